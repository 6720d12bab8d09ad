//! What subscribers are told about. The names are part of the contract.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Outage,
    Recovered,
    ActionNeeded,
    Reminder,
    Test,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Outage,
        EventKind::Recovered,
        EventKind::ActionNeeded,
        EventKind::Reminder,
        EventKind::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Outage => "outage",
            EventKind::Recovered => "recovered",
            EventKind::ActionNeeded => "action_needed",
            EventKind::Reminder => "reminder",
            EventKind::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
