//! The demo's narrator: numbered steps, indented explanations, facts in an aligned label
//! column (CJK labels counted by the columns they take), frames annotated field by field.

use std::io::Write;

use anyhow::Result;

use crate::annotate;

/// Width of the label column.
pub(super) const LABEL: usize = 11;

/// Prints the narration: numbered steps, indented lines, an aligned label column.
pub(super) struct Narrator<W> {
    pub(super) out: W,
    steps: usize,
    /// One line per finished step, for the summary.
    pub(super) notes: Vec<(String, String)>,
    /// Whether the WebSocket runs inside TLS: frames are then not on the wire as shown.
    pub(super) tls: bool,
}

impl<W: Write> Narrator<W> {
    pub(super) fn new(out: W) -> Self {
        Narrator {
            out,
            steps: 0,
            notes: Vec::new(),
            tls: false,
        }
    }

    pub(super) fn title(&mut self, title: &str) -> Result<()> {
        writeln!(self.out, "{title}\n{}", "=".repeat(title.chars().count()))?;
        Ok(())
    }

    /// Keeps a line for the summary.
    pub(super) fn remember(&mut self, label: &str, value: &str) {
        self.notes.push((label.to_owned(), value.to_owned()));
    }

    /// Starts the next numbered step.
    pub(super) fn step(&mut self, title: &str) -> Result<()> {
        self.steps += 1;
        writeln!(self.out, "\nStep {}  {title}", self.steps)?;
        Ok(())
    }

    /// An explanation, indented.
    pub(super) fn text(&mut self, text: &str) -> Result<()> {
        for line in text.lines() {
            writeln!(self.out, "  {line}")?;
        }
        Ok(())
    }

    /// `label` in the label column, then `value`.
    pub(super) fn fact(&mut self, label: &str, value: &str) -> Result<()> {
        let pad = LABEL.saturating_sub(display_width(label));
        writeln!(self.out, "  {label}{:pad$}  {value}", "")?;
        Ok(())
    }

    /// A line indented under a fact.
    pub(super) fn detail(&mut self, label: &str, value: &str) -> Result<()> {
        writeln!(self.out, "    {label:<9}  {value}")?;
        Ok(())
    }

    /// Verbatim HTTP head lines, each prefixed with `marker`.
    pub(super) fn http(&mut self, marker: &str, head: &[u8]) -> Result<()> {
        let text = String::from_utf8_lossy(head);
        for line in text.split("\r\n").filter(|line| !line.is_empty()) {
            writeln!(self.out, "    {marker} {line}")?;
        }
        Ok(())
    }

    /// Every frame in `wire`, fully annotated.
    pub(super) fn frames(&mut self, direction: &str, wire: &[u8]) -> Result<()> {
        let (found, _) = annotate::frames(wire)?;
        for frame in &found {
            let bytes = &wire[frame.offset..frame.offset + frame.wire_len()];
            self.fact(
                direction,
                &format!(
                    "{} frame, {} bytes {}",
                    annotate::opcode_name(frame.header.opcode),
                    frame.wire_len(),
                    if self.tls {
                        "inside TLS"
                    } else {
                        "on the wire"
                    }
                ),
            )?;
            self.detail("bytes", &annotate::hex(bytes, 16))?;
            self.detail("header", &frame.header_line())?;
            let payload = frame.payload_line();
            if frame.header.mask.is_some() && !frame.payload.is_empty() {
                self.detail(
                    "payload",
                    &format!("{payload}  (unmasked: byte i ^ key[i % 4])"),
                )?;
            } else {
                self.detail("payload", &payload)?;
            }
        }
        Ok(())
    }
}

/// Terminal columns `text` takes: CJK characters take two.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_labels_are_aligned_by_columns() {
        assert_eq!(display_width("client"), 6);
        assert_eq!(display_width("粘包 stuck"), 10);
        let mut say = Narrator::new(Vec::new());
        say.fact("粘包 stuck", "x").unwrap();
        say.fact("client", "x").unwrap();
        let text = String::from_utf8(say.out).unwrap();
        let columns: Vec<usize> = text
            .lines()
            .map(|l| display_width(&l[..l.len() - 1]))
            .collect();
        assert_eq!(columns[0], columns[1]);
    }
}
