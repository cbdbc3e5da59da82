//! The terminal modes in output that is dropped without being emulated.
//!
//! After a long flood the screen a restore is drawn from skips most of the output (emulating it
//! all would cost more than the terminal itself). Contents come back from the newest output, but
//! a mode switched long before — the alternate screen, hidden cursor, application cursor keys,
//! bracketed paste, mouse reporting — would be lost with the output that set it. [`ModeScanner`]
//! follows the sequences that set such modes through the dropped output and keeps only where
//! each mode ended up, which the emulator is given in place of that output: a handful of
//! sequences however many the output held, so a program that sets modes in a loop costs the
//! emulator nothing more.

use std::collections::BTreeMap;

/// The longest escape sequence followed (longer ones are not mode changes anyone sends).
const SEQUENCE_LIMIT: usize = 64;
/// Distinct DEC private modes remembered at most (terminals know a few dozen).
const MODE_LIMIT: usize = 64;

const ESC: u8 = 0x1b;

/// Follows escape sequences across the output it is given, chunk after chunk, and remembers
/// where the modes they set ended up.
#[derive(Debug, Default)]
pub(crate) struct ModeScanner {
    /// The escape sequence begun and not yet ended (empty: plain text).
    sequence: Vec<u8>,
    /// A full reset (`ESC c`) came: it goes first, and undoes what came before it.
    reset: bool,
    /// Each DEC private mode set (`true`) or reset since, by number, last value only.
    private: BTreeMap<u16, bool>,
    /// The keypad mode last set: application (`ESC =`, `true`) or numeric (`ESC >`).
    keypad: Option<bool>,
}

impl ModeScanner {
    /// Follows `output`, which continues what was scanned before.
    pub(crate) fn scan(&mut self, output: &[u8]) {
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
            self.step(byte);
        }
    }

    /// One byte inside an escape sequence.
    fn step(&mut self, byte: u8) {
        if byte == ESC {
            // A new sequence cancels the one begun.
            self.sequence.clear();
            self.sequence.push(ESC);
            return;
        }
        if self.sequence.len() == 1 {
            match byte {
                b'[' => self.sequence.push(byte),
                b'=' => self.keypad = Some(true),
                b'>' => self.keypad = Some(false),
                b'c' => {
                    self.reset = true;
                    self.private.clear();
                    self.keypad = None;
                }
                _ => {}
            }
            if byte != b'[' {
                self.sequence.clear();
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
                if let Some(parameters) = self.sequence.strip_prefix(b"\x1b[?")
                    && matches!(byte, b'h' | b'l')
                {
                    let parameters = parameters.to_vec();
                    self.remember(&parameters, byte == b'h');
                }
                self.sequence.clear();
            }
            // Controls inside a sequence are carried out by terminals, which go on with it.
            0x00..=0x1f => {}
            _ => self.sequence.clear(),
        }
    }

    /// `ESC [ ? P1 ; P2 … h|l`: each mode's new value.
    fn remember(&mut self, parameters: &[u8], on: bool) {
        for parameter in parameters.split(|&byte| byte == b';') {
            let Some(mode) = std::str::from_utf8(parameter).ok().and_then(|text| text.parse::<u16>().ok()) else {
                continue;
            };
            if self.private.len() < MODE_LIMIT || self.private.contains_key(&mode) {
                self.private.insert(mode, on);
            }
        }
    }

    /// The sequences that put a terminal's modes where the output scanned so far left them
    /// (nothing when it set none), in place of that output; the scanner starts afresh,
    /// except inside an escape sequence the output ended in, which is handed over too: the
    /// output given to the emulator next continues it.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        if std::mem::take(&mut self.reset) {
            bytes.extend_from_slice(b"\x1bc");
        }
        for (mode, on) in std::mem::take(&mut self.private) {
            bytes.extend_from_slice(format!("\x1b[?{mode}{}", if on { 'h' } else { 'l' }).as_bytes());
        }
        match self.keypad.take() {
            Some(true) => bytes.extend_from_slice(b"\x1b="),
            Some(false) => bytes.extend_from_slice(b"\x1b>"),
            None => {}
        }
        bytes.append(&mut self.sequence);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(output: &[u8], piece: usize) -> Vec<u8> {
        let mut scanner = ModeScanner::default();
        for part in output.chunks(piece) {
            scanner.scan(part);
        }
        scanner.take()
    }

    #[test]
    fn where_modes_ended_up_is_picked_out_of_any_output_however_it_is_split() {
        let output = b"text\x1b[?1049h\x1b[1;31mred\x1b[0m\x1b[?25l\x1b[2J\x1b=more\x1b[?1000;1006h\
                       \x1b[?1\r;2004h\x1b[?1049l\x1b[?1049\x1b[?7lend\x1b>\x1b[12h\x1b(B\x1b[?1049h";
        let expected: &[u8] = b"\x1b[?1h\x1b[?7l\x1b[?25l\x1b[?1000h\x1b[?1006h\x1b[?1049h\x1b[?2004h\x1b>";
        for piece in 1..=output.len() {
            assert_eq!(scan_in_pieces(output, piece), expected, "in pieces of {piece}");
        }
        // What a fresh emulator makes of it: the modes the whole output left.
        let mut terminal = vt100::Parser::new(24, 80, 0);
        terminal.process(expected);
        let screen = terminal.screen();
        assert!(screen.alternate_screen() && screen.hide_cursor() && screen.bracketed_paste());
        assert!(screen.application_cursor() && !screen.application_keypad());
    }

    #[test]
    fn a_full_reset_undoes_what_came_before_it() {
        assert_eq!(scan_in_pieces(b"\x1b[?1049h\x1b=\x1bc\x1b[?25l", 3), b"\x1bc\x1b[?25l");
    }

    #[test]
    fn modes_set_in_a_loop_cost_one_sequence_and_text_costs_none() {
        let looped = b"\x1b[?1049h\x1b[?1049l\x1bc".repeat(10_000);
        assert_eq!(scan_in_pieces(&looped, 4096), b"\x1bc");
        let many: Vec<u8> = (0..5_000u32).flat_map(|mode| format!("\x1b[?{mode}h").into_bytes()).collect();
        assert_eq!(scan_in_pieces(&many, 4096).iter().filter(|&&byte| byte == ESC).count(), MODE_LIMIT);
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
        scanner.scan(b"abc\x1b[?25l\x1b[?10");
        assert_eq!(scanner.take(), b"\x1b[?25l\x1b[?10");
        assert!(scanner.take().is_empty());
        // Afresh: the rest of that sequence is text now.
        scanner.scan(b"49h");
        assert!(scanner.take().is_empty());
    }
}
