//! Secrets (API keys, SMTP password, webhook signing key): where they come
//! from and a type that never prints them.

use std::path::{Path, PathBuf};

/// A resolved secret. `Debug` and `Display` print `***`, so a secret cannot
/// reach a log line or an error message by accident; [`Secret::expose`] is the
/// one way to read it, used where it goes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from, e.g. `env DEEPSEEK_API_KEY`: safe to print.
    pub origin: String,
}

impl Secret {
    pub fn new(value: impl Into<String>, origin: impl Into<String>) -> Secret {
        Secret {
            value: value.into(),
            origin: origin.into(),
        }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, ***)", self.origin)
    }
}

/// Reads a secret reference `{ env = "…" } | { file = "…" } | { credential = "…" }`.
/// The error says what to write instead.
///
/// With `read` false the reference is checked but not followed: commands
/// that only read the history need no secrets, and must work from a shell
/// that lacks the service's `$CREDENTIALS_DIRECTORY` or environment.
pub fn resolve(
    value: &toml::Value,
    config_dir: Option<&Path>,
    read: bool,
) -> Result<Secret, String> {
    let table = match value {
        toml::Value::Table(t) => t,
        toml::Value::String(_) => {
            return Err("a secret cannot be written in the config file itself; \
                 use { env = \"VAR\" }, { file = \"/path\" } or { credential = \"name\" } (systemd LoadCredential=)"
                .to_string());
        }
        other => {
            return Err(format!(
                "expected {{ env = \"VAR\" }}, {{ file = \"/path\" }} or {{ credential = \"name\" }}, found a {}",
                other.type_str()
            ));
        }
    };
    if table.len() != 1 {
        return Err(
            "a secret names exactly one source: { env = \"VAR\" }, { file = \"/path\" } or { credential = \"name\" }"
                .to_string(),
        );
    }
    let (source, name) = table
        .iter()
        .next()
        .ok_or_else(|| "empty secret table".to_string())?;
    let name = name
        .as_str()
        .ok_or_else(|| format!("`{source}` takes a string"))?;
    if !read && matches!(source.as_str(), "env" | "file" | "credential") {
        return Ok(Secret::new(
            String::new(),
            format!("{source} {name}, not read"),
        ));
    }
    let secret = match source.as_str() {
        "env" => {
            let v = std::env::var(name).map_err(|_| {
                format!("environment variable {name} is not set; export it, or point the secret at a file")
            })?;
            Secret::new(v, format!("env {name}"))
        }
        "file" => {
            let mut path = PathBuf::from(name);
            if path.is_relative() {
                if let Some(dir) = config_dir {
                    path = dir.join(path);
                }
            }
            let v = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
            Secret::new(v, format!("file {}", path.display()))
        }
        "credential" => {
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                format!(
                    "credential {name:?} needs $CREDENTIALS_DIRECTORY, which systemd sets for a unit with \
                     LoadCredential={name}:/path; outside systemd use {{ file = \"/path\" }}"
                )
            })?;
            let path = Path::new(&dir).join(name);
            let v = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read credential {}: {e}", path.display()))?;
            Secret::new(v, format!("credential {name}"))
        }
        other => {
            return Err(format!(
                "unknown secret source `{other}`; use env, file or credential"
            ));
        }
    };
    // Files usually end in a newline that is not part of the secret.
    let trimmed = secret.value.trim().to_string();
    if trimmed.is_empty() {
        return Err(format!("the secret from {} is empty", secret.origin));
    }
    Ok(Secret::new(trimmed, secret.origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(src: &str) -> toml::Value {
        let t: toml::Table = toml::from_str(&format!("s = {src}")).unwrap();
        t["s"].clone()
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sk-very-secret", "env X");
        assert!(!format!("{s:?}").contains("sk-very"));
    }

    #[test]
    fn file_secret_is_trimmed_and_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "sk-abc\n").unwrap();
        let s = resolve(&table(r#"{ file = "key" }"#), Some(dir.path()), true).unwrap();
        assert_eq!(s.expose(), "sk-abc");
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = resolve(&table(r#""sk-inline""#), None, true).unwrap_err();
        assert!(e.contains("env ="), "{e}");
        let e = resolve(&table(r#"{ env = "DSW_TEST_SURELY_UNSET" }"#), None, true).unwrap_err();
        assert!(e.contains("DSW_TEST_SURELY_UNSET is not set"), "{e}");
        let e = resolve(&table(r#"{ file = "/nonexistent/x" }"#), None, true).unwrap_err();
        assert!(e.contains("/nonexistent/x"), "{e}");
        let e = resolve(&table(r#"{ vault = "x" }"#), None, true).unwrap_err();
        assert!(e.contains("unknown secret source"), "{e}");
        let e = resolve(&table(r#"{ env = "A", file = "B" }"#), None, true).unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
    }

    #[test]
    fn unread_secrets_are_checked_but_not_followed() {
        let s = resolve(&table(r#"{ env = "DSW_TEST_SURELY_UNSET" }"#), None, false).unwrap();
        assert_eq!(s.expose(), "");
        assert!(resolve(&table(r#"{ credential = "k" }"#), None, false).is_ok());
        // A malformed reference is still an error.
        let e = resolve(&table(r#""sk-inline""#), None, false).unwrap_err();
        assert!(e.contains("env ="), "{e}");
        let e = resolve(&table(r#"{ vault = "x" }"#), None, false).unwrap_err();
        assert!(e.contains("unknown secret source"), "{e}");
    }
}
