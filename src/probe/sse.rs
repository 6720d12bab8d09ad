//! Incremental Server-Sent Events parsing (WHATWG HTML, "Server-sent events").
//!
//! The `chat` probe reads a `text/event-stream` answer chunk by chunk. This
//! module owns turning those raw chunks into [`SseEvent`]s and counting the
//! keep-alives (comments and stray blank lines) DeepSeek sends while a request
//! waits in its queue. It is pure: no I/O, no clock, bounded memory.

/// Longest line kept, in bytes. Longer lines lose their excess so a hostile or
/// broken server cannot make the probe grow without bound.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Most `data` kept for one event, in bytes, for the same reason.
pub const MAX_DATA_BYTES: usize = 1 << 20;

/// The UTF-8 byte order mark, stripped once at the start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event: the unit the chat classifier consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `None` when absent or empty (the spec's "message").
    pub event: Option<String>,
    /// Every `data:` line of the event, joined with `'\n'`.
    pub data: String,
}

/// Parser state carried between chunks, since a chunk may end anywhere: inside
/// a line, inside a UTF-8 character, or between the `\r` and `\n` of a CRLF.
#[derive(Debug, Default, Clone)]
pub struct SseParser {
    /// Bytes of the line being read (at most [`MAX_LINE_BYTES`]).
    line: Vec<u8>,
    /// The current line lost bytes to the cap.
    line_overflow: bool,
    /// The previous chunk ended with `\r`: a leading `\n` completes that CRLF.
    after_cr: bool,
    /// The BOM check at the start of the stream is over.
    bom_done: bool,
    /// How many leading bytes matched the BOM so far.
    bom_matched: usize,
    /// The pending event's data buffer (without the spec's trailing `\n`).
    data: String,
    /// A `data` field was seen since the last dispatch.
    has_data: bool,
    /// The pending event's data lost bytes to the cap.
    data_overflow: bool,
    /// The pending event's type buffer.
    event_type: String,
    comments: u64,
    blank_lines: u64,
    events: u64,
    bytes: u64,
    oversized: u64,
    unterminated: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds raw bytes as they arrive; completed events are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        self.bytes = self.bytes.saturating_add(chunk.len() as u64);
        let mut rest = self.skip_bom(chunk);
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if let Some((b'\n', tail)) = rest.split_first() {
                    rest = tail;
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    let (head, tail) = rest.split_at(i);
                    self.push_line_bytes(head);
                    self.after_cr = tail.first() == Some(&b'\r');
                    self.end_line(out);
                    rest = tail.get(1..).unwrap_or_default();
                }
                None => {
                    self.push_line_bytes(rest);
                    rest = &[];
                }
            }
        }
    }

    /// End of stream. Per the spec an event missing its terminating blank line
    /// is discarded, so nothing is appended to `out`; [`Self::unterminated`]
    /// records whether anything was pending. The parser is then ready for a
    /// new stream (counters keep accumulating).
    pub fn finish(&mut self, _out: &mut Vec<SseEvent>) {
        let partial_bom = !self.bom_done && self.bom_matched > 0;
        self.unterminated = partial_bom
            || !self.line.is_empty()
            || self.line_overflow
            || self.has_data
            || !self.event_type.is_empty();
        self.line.clear();
        self.line_overflow = false;
        self.after_cr = false;
        self.bom_done = false;
        self.bom_matched = 0;
        self.reset_event();
    }

    /// Comment lines (starting with `:`), e.g. DeepSeek's `: keep-alive`.
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Blank lines that dispatched nothing: keep-alive blank lines.
    pub fn blank_lines(&self) -> u64 {
        self.blank_lines
    }

    /// Events dispatched so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Raw bytes fed so far, BOM and line endings included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Lines or events that lost bytes to [`MAX_LINE_BYTES`] / [`MAX_DATA_BYTES`].
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// Whether [`Self::finish`] discarded a pending, unterminated event or
    /// line: the stream was cut rather than closed cleanly.
    pub fn unterminated(&self) -> bool {
        self.unterminated
    }

    /// Consumes the leading BOM (possibly split across chunks) and returns the
    /// rest of `chunk`. Bytes that only looked like a BOM prefix are replayed
    /// as line bytes.
    fn skip_bom<'c>(&mut self, chunk: &'c [u8]) -> &'c [u8] {
        let mut rest = chunk;
        while !self.bom_done {
            let Some((&b, tail)) = rest.split_first() else {
                break;
            };
            if BOM.get(self.bom_matched) == Some(&b) {
                self.bom_matched += 1;
                rest = tail;
                if self.bom_matched == BOM.len() {
                    self.bom_done = true;
                }
            } else {
                self.bom_done = true;
                let held = BOM.get(..self.bom_matched).unwrap_or_default();
                self.push_line_bytes(held);
            }
        }
        rest
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
        if bytes.len() > room {
            self.line_overflow = true;
        }
        let keep = bytes.get(..room.min(bytes.len())).unwrap_or_default();
        self.line.extend_from_slice(keep);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        if self.line_overflow {
            self.oversized = self.oversized.saturating_add(1);
            self.line_overflow = false;
        }
        // Take the buffer to read it while mutating the rest of `self`, then
        // give it back so its capacity (at most the cap) is reused.
        let line = std::mem::take(&mut self.line);
        self.process_line(&line, out);
        self.line = line;
        self.line.clear();
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.first() == Some(&b':') {
            self.comments = self.comments.saturating_add(1);
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let (name, tail) = line.split_at(i);
                let value = tail.get(1..).unwrap_or_default();
                (name, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                let value = String::from_utf8_lossy(value);
                let kept = (!self.has_data || self.push_data("\n")) && self.push_data(&value);
                if !kept && !self.data_overflow {
                    self.data_overflow = true;
                    self.oversized = self.oversized.saturating_add(1);
                }
                self.has_data = true;
            }
            b"event" => {
                self.event_type = String::from_utf8_lossy(value).into_owned();
            }
            // `id`, `retry` and unknown fields do not matter to a probe.
            _ => {}
        }
    }

    /// Appends to the data buffer up to [`MAX_DATA_BYTES`], cutting on a
    /// character boundary. False if something was dropped.
    fn push_data(&mut self, s: &str) -> bool {
        let room = MAX_DATA_BYTES.saturating_sub(self.data.len());
        if s.len() <= room {
            self.data.push_str(s);
            return true;
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.data.push_str(s.get(..end).unwrap_or_default());
        false
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            let event = std::mem::take(&mut self.event_type);
            out.push(SseEvent {
                event: (!event.is_empty()).then_some(event),
                data: std::mem::take(&mut self.data),
            });
            self.events = self.events.saturating_add(1);
        } else {
            self.blank_lines = self.blank_lines.saturating_add(1);
        }
        self.reset_event();
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.data_overflow = false;
        self.event_type.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DeepSeek `chat/completions` stream as seen on the wire: queued
    /// keep-alives, a role-only delta, content (with multi-byte characters so
    /// splits land inside them), the finish chunk with usage, and `[DONE]`.
    const DEEPSEEK_STREAM: &str = concat!(
        ": keep-alive\n\n",
        ": keep-alive\n\n",
        "data: {\"id\":\"8f1c\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"deepseek-flash\",\"system_fingerprint\":\"fp_3a5770e1b4\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"8f1c\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"deepseek-flash\",\"system_fingerprint\":\"fp_3a5770e1b4\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"你好\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"8f1c\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"deepseek-flash\",\"system_fingerprint\":\"fp_3a5770e1b4\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"！\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"8f1c\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"deepseek-flash\",\"system_fingerprint\":\"fp_3a5770e1b4\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":0},\"prompt_cache_hit_tokens\":0,\"prompt_cache_miss_tokens\":9}}\n\n",
        "data: [DONE]\n\n",
    );

    fn parse_chunks(chunks: &[&[u8]]) -> (Vec<SseEvent>, SseParser) {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out);
        }
        p.finish(&mut out);
        (out, p)
    }

    fn parse(s: &str) -> (Vec<SseEvent>, SseParser) {
        parse_chunks(&[s.as_bytes()])
    }

    fn data(ev: &[SseEvent]) -> Vec<&str> {
        ev.iter().map(|e| e.data.as_str()).collect()
    }

    fn counters(p: &SseParser) -> (u64, u64, u64, u64, bool) {
        (
            p.comments(),
            p.blank_lines(),
            p.events(),
            p.bytes(),
            p.unterminated(),
        )
    }

    /// Feeding `s` split at every byte offset, and one byte at a time, gives
    /// exactly what feeding it whole gives.
    fn assert_split_invariant(s: &[u8]) {
        let (whole, wp) = parse_chunks(&[s]);
        for i in 0..=s.len() {
            let (a, b) = s.split_at(i);
            let (split, sp) = parse_chunks(&[a, b]);
            assert_eq!(split, whole, "split at {i}");
            assert_eq!(counters(&sp), counters(&wp), "split at {i}");
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        let (single, sp) = parse_chunks(&bytes);
        assert_eq!(single, whole);
        assert_eq!(counters(&sp), counters(&wp));
        // A few irregular chunkings (deterministic pseudo-random sizes).
        let mut seed: u32 = 0x9E37_79B9;
        for _ in 0..20 {
            let mut chunks = Vec::new();
            let mut rest = s;
            while !rest.is_empty() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let n = (seed >> 24) as usize % 40 + 1;
                let (c, r) = rest.split_at(n.min(rest.len()));
                chunks.push(c);
                rest = r;
            }
            let (got, _) = parse_chunks(&chunks);
            assert_eq!(got, whole);
        }
    }

    #[test]
    fn deepseek_stream_parses() {
        let (ev, p) = parse(DEEPSEEK_STREAM);
        assert_eq!(ev.len(), 5);
        assert!(ev.iter().all(|e| e.event.is_none()));
        assert!(ev[1].data.contains("你好"));
        assert!(ev[2].data.contains('！'));
        assert_eq!(ev[4].data, "[DONE]");
        assert_eq!(p.comments(), 2);
        assert_eq!(p.blank_lines(), 2);
        assert_eq!(p.events(), 5);
        assert_eq!(p.bytes(), DEEPSEEK_STREAM.len() as u64);
        assert!(!p.unterminated());
    }

    #[test]
    fn deepseek_stream_split_at_every_offset() {
        assert_split_invariant(DEEPSEEK_STREAM.as_bytes());
    }

    #[test]
    fn crlf_stream_split_at_every_offset() {
        let crlf = DEEPSEEK_STREAM.replace('\n', "\r\n");
        let (ev, p) = parse(&crlf);
        let (lf, _) = parse(DEEPSEEK_STREAM);
        assert_eq!(ev, lf);
        assert_eq!(p.blank_lines(), 2);
        assert_split_invariant(crlf.as_bytes());
    }

    #[test]
    fn lone_cr_stream_split_at_every_offset() {
        let cr = DEEPSEEK_STREAM.replace('\n', "\r");
        let (ev, p) = parse(&cr);
        let (lf, _) = parse(DEEPSEEK_STREAM);
        assert_eq!(ev, lf);
        assert_eq!(p.comments(), 2);
        assert_eq!(p.blank_lines(), 2);
        assert_split_invariant(cr.as_bytes());
    }

    #[test]
    fn mixed_line_endings() {
        let (ev, p) = parse("data: a\r\ndata: b\rdata: c\n\r\n: x\r\r");
        assert_eq!(data(&ev), ["a\nb\nc"]);
        assert_eq!(p.comments(), 1);
        assert_eq!(p.blank_lines(), 1);
    }

    #[test]
    fn cr_and_lf_in_separate_chunks_are_one_line_end() {
        let (ev, p) = parse_chunks(&[b"data: x\r", b"\n\r", b"\n"]);
        assert_eq!(data(&ev), ["x"]);
        assert_eq!(p.blank_lines(), 0);
        assert!(!p.unterminated());
    }

    #[test]
    fn comments_are_counted_not_dispatched() {
        let (ev, p) = parse(": keep-alive\n:\n:: x\ndata: y\n: between\n\n");
        assert_eq!(data(&ev), ["y"]);
        assert_eq!(p.comments(), 4);
        assert_eq!(p.blank_lines(), 0);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let (ev, _) = parse("data: first\ndata:second\ndata:  third\ndata\ndata:\n\n");
        assert_eq!(data(&ev), ["first\nsecond\n third\n\n"]);
    }

    #[test]
    fn empty_data_line_still_dispatches() {
        let (ev, p) = parse("data\n\ndata:\n\n");
        assert_eq!(data(&ev), ["", ""]);
        assert_eq!(p.blank_lines(), 0);
    }

    #[test]
    fn event_type_is_set_and_reset() {
        let (ev, p) =
            parse("event: error\ndata: boom\n\ndata: next\n\nevent: lonely\n\ndata: after\n\n");
        assert_eq!(ev[0].event.as_deref(), Some("error"));
        assert_eq!(ev[0].data, "boom");
        assert_eq!(ev[1].event, None);
        assert_eq!(ev[2].event, None, "an event type without data is dropped");
        assert_eq!(ev[2].data, "after");
        assert_eq!(p.blank_lines(), 1);
        let (ev, _) = parse("event:\ndata: x\n\n");
        assert_eq!(ev[0].event, None);
    }

    #[test]
    fn id_retry_and_unknown_fields_are_ignored() {
        let (ev, _) = parse("id: 7\nretry: 1000\nfoo: bar\nbare\ndata: x\nDATA: y\n\n");
        assert_eq!(
            ev,
            [SseEvent {
                event: None,
                data: "x".into()
            }]
        );
    }

    #[test]
    fn only_one_leading_space_is_stripped() {
        let (ev, _) = parse("data:   spaced  \ndata:\ttab\n\n");
        assert_eq!(data(&ev), ["  spaced  \n\ttab"]);
    }

    #[test]
    fn missing_trailing_blank_line_discards_the_event() {
        for s in [
            "data: x\n",
            "data: x",
            "data: x\r",
            "event: e\n",
            "data: a\n\ndata: b\n",
        ] {
            let (ev, p) = parse(s);
            assert!(ev.len() <= 1, "{s:?}");
            assert!(ev.iter().all(|e| e.data == "a"), "{s:?}");
            assert!(p.unterminated(), "{s:?}");
        }
        let (_, p) = parse(": keep-alive");
        assert!(p.unterminated(), "a partial comment line was pending");
        let (ev, p) = parse("data: x\n\n");
        assert_eq!(data(&ev), ["x"]);
        assert!(!p.unterminated());
    }

    #[test]
    fn finish_resets_for_a_new_stream() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"data: lost", &mut out);
        p.finish(&mut out);
        assert!(out.is_empty());
        assert!(p.unterminated());
        p.feed(b"\xEF\xBB\xBFdata: kept\n\n", &mut out);
        p.finish(&mut out);
        assert_eq!(data(&out), ["kept"]);
        assert!(!p.unterminated());
    }

    #[test]
    fn bom_at_start_is_stripped_even_when_split() {
        let s = "\u{FEFF}data: x\n\n";
        let (ev, p) = parse(s);
        assert_eq!(data(&ev), ["x"]);
        assert_eq!(p.bytes(), s.len() as u64);
        assert_split_invariant(s.as_bytes());
        let comment = "\u{FEFF}: hi\n\n";
        let (_, p) = parse(comment);
        assert_eq!(p.comments(), 1);
    }

    #[test]
    fn only_the_first_bom_is_stripped() {
        // A second BOM becomes part of the field name: an unknown field.
        let (ev, _) = parse("\u{FEFF}\u{FEFF}data: x\n\n");
        assert!(ev.is_empty());
        // A BOM in a value is kept.
        let (ev, _) = parse("data: \u{FEFF}x\n\n");
        assert_eq!(data(&ev), ["\u{FEFF}x"]);
    }

    #[test]
    fn partial_bom_is_replayed_as_text() {
        let (ev, _) = parse_chunks(&[b"\xEF\xBB", b"data: x\n\n"]);
        assert!(ev.is_empty(), "the field name is garbage, not `data`");
        let (ev, _) = parse_chunks(&[b"\xEF", b"\n", b"data: y\n\n"]);
        assert_eq!(data(&ev), ["y"]);
        let (_, p) = parse_chunks(&[b"\xEF\xBB"]);
        assert!(p.unterminated());
    }

    #[test]
    fn keep_alive_only_streams() {
        let s = ": keep-alive\n\n".repeat(50);
        let (ev, p) = parse(&s);
        assert!(ev.is_empty());
        assert_eq!((p.comments(), p.blank_lines(), p.events()), (50, 50, 0));
        assert!(!p.unterminated());
        let (ev, p) = parse("\n\n\r\n\r");
        assert!(ev.is_empty());
        assert_eq!(p.blank_lines(), 4);
        assert_split_invariant(s.as_bytes());
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let (ev, _) = parse_chunks(&[b"data: a\xFFb\xE4\xBD", b"\n\n"]);
        assert_eq!(data(&ev), ["a\u{FFFD}b\u{FFFD}"]);
        let (ev, _) = parse_chunks(&[b"data: \xE4", b"\xBD\xA0\n\n"]);
        assert_eq!(data(&ev), ["你"]);
    }

    #[test]
    fn overlong_lines_are_capped_and_parsing_continues() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"data: ", &mut out);
        let block = vec![b'x'; 64 * 1024];
        for _ in 0..40 {
            p.feed(&block, &mut out);
            assert!(p.line.len() <= MAX_LINE_BYTES);
            assert!(p.line.capacity() <= 2 * MAX_LINE_BYTES);
        }
        p.feed(b"\n\ndata: next\n\n", &mut out);
        p.finish(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data.len(), MAX_LINE_BYTES - "data: ".len());
        assert_eq!(out[1].data, "next");
        assert_eq!(p.oversized(), 1);
    }

    #[test]
    fn event_data_is_capped_across_lines() {
        let line = format!("data: {}\n", "é".repeat(300 * 1024));
        let s = format!("{}\ndata: ok\n\n", line.repeat(4));
        let (ev, p) = parse(&s);
        assert_eq!(ev.len(), 2);
        assert!(ev[0].data.len() <= MAX_DATA_BYTES);
        assert!(ev[0].data.len() > MAX_DATA_BYTES - 4);
        assert_eq!(ev[1].data, "ok");
        assert_eq!(p.oversized(), 1);
    }
}
