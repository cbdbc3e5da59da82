//! The terminal modes in output that is dropped without being emulated.
//!
//! After a long flood the screen a restore is drawn from skips most of the output (emulating it
//! all would cost more than the terminal itself). Contents come back from the newest output, but
//! a mode switched long before — the alternate screen, hidden cursor, application cursor keys,
//! bracketed paste, mouse reporting — would be lost with the output that set it. [`ModeScanner`]
//! picks the sequences that set such modes out of the dropped output, so that the emulator is
//! given them in place of it.

/// The longest escape sequence followed (longer ones are not mode changes anyone sends).
const SEQUENCE_LIMIT: usize = 64;

const ESC: u8 = 0x1b;

/// Follows escape sequences across the output it is given, chunk after chunk.
#[derive(Debug, Default)]
pub(crate) struct ModeScanner {
    /// The escape sequence begun and not yet ended (empty: plain text).
    sequence: Vec<u8>,
}

impl ModeScanner {
    /// Appends to `modes` each mode-setting sequence `output` ends (DEC private modes set and
    /// reset, keypad modes, full reset), in order. `output` continues what was scanned before.
    pub(crate) fn scan(&mut self, output: &[u8], modes: &mut Vec<u8>) {
        let mut rest = output;
        while !rest.is_empty() {
            if self.sequence.is_empty() {
                let Some(at) = memchr::memchr(ESC, rest) else { return };
                self.sequence.push(ESC);
                rest = &rest[at + 1..];
                continue;
            }
            let byte = rest[0];
            rest = &rest[1..];
            self.step(byte, modes);
        }
    }

    /// One byte inside an escape sequence.
    fn step(&mut self, byte: u8, modes: &mut Vec<u8>) {
        if byte == ESC {
            // A new sequence cancels the one begun.
            self.sequence.clear();
            self.sequence.push(ESC);
            return;
        }
        if self.sequence.len() == 1 {
            match byte {
                b'[' => self.sequence.push(byte),
                // Keypad application and numeric mode, full reset.
                b'=' | b'>' | b'c' => {
                    modes.extend_from_slice(&[ESC, byte]);
                    self.sequence.clear();
                }
                _ => self.sequence.clear(),
            }
            return;
        }
        match byte {
            // Parameters and intermediates.
            0x20..=0x3f => {
                self.sequence.push(byte);
                if self.sequence.len() > SEQUENCE_LIMIT {
                    self.sequence.clear();
                }
            }
            // The final byte: only DEC private modes set and reset are kept.
            0x40..=0x7e => {
                if self.sequence[2..].first() == Some(&b'?') && matches!(byte, b'h' | b'l') {
                    modes.extend_from_slice(&self.sequence);
                    modes.push(byte);
                }
                self.sequence.clear();
            }
            // Controls inside a sequence are carried out by terminals, which go on with it.
            0x00..=0x1f => {}
            _ => self.sequence.clear(),
        }
    }

    /// The escape sequence the scanned output ended inside, if any, to be given to the emulator
    /// before the output that follows it; the scanner starts afresh.
    pub(crate) fn take_unfinished(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(output: &[u8], piece: usize) -> Vec<u8> {
        let mut scanner = ModeScanner::default();
        let mut modes = Vec::new();
        for part in output.chunks(piece) {
            scanner.scan(part, &mut modes);
        }
        modes
    }

    #[test]
    fn mode_changes_are_picked_out_of_any_output_in_order_however_it_is_split() {
        let output = b"text\x1b[?1049h\x1b[1;31mred\x1b[0m\x1b[?25l\x1b[2J\x1b=more\x1b[?1000;1006h\
                       \x1b[?1\r;2004h\x1b[?1049l\x1b[?1049\x1b[?7lend\x1bc\x1b>\x1b[12h\x1b(B";
        let expected: &[u8] = b"\x1b[?1049h\x1b[?25l\x1b=\x1b[?1000;1006h\x1b[?1;2004h\x1b[?1049l\x1b[?7l\x1bc\x1b>";
        for piece in 1..=output.len() {
            assert_eq!(scan_in_pieces(output, piece), expected, "in pieces of {piece}");
        }
    }

    #[test]
    fn plain_text_and_overlong_sequences_give_nothing() {
        let text: Vec<u8> = (0..100_000u32).map(|index| b'a' + (index % 26) as u8).collect();
        assert!(scan_in_pieces(&text, 4096).is_empty());
        let mut long = b"\x1b[?".to_vec();
        long.extend(std::iter::repeat_n(b'1', 200));
        long.push(b'h');
        assert!(scan_in_pieces(&long, 7).is_empty());
    }

    #[test]
    fn an_unfinished_sequence_is_handed_over() {
        let mut scanner = ModeScanner::default();
        let mut modes = Vec::new();
        scanner.scan(b"abc\x1b[?10", &mut modes);
        assert!(modes.is_empty());
        assert_eq!(scanner.take_unfinished(), b"\x1b[?10");
        assert!(scanner.take_unfinished().is_empty());
        // Afresh: the rest of that sequence is text now.
        scanner.scan(b"49h", &mut modes);
        assert!(modes.is_empty());
    }
}
