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

/// The longest escape sequence followed (longer ones are not mode changes anyone sends).
const SEQUENCE_LIMIT: usize = 256;
/// Parameters of one sequence taken at most, as the emulator's parser (`vte`) takes them.
const PARAMETER_LIMIT: usize = 32;
/// The DEC private modes the emulator keeps (`vt100`'s DECSET and DECRST): application
/// cursor keys, origin, the mouse modes and encodings, cursor visibility, the alternate screens,
/// bracketed paste. Others change nothing in a restore, so they are not remembered.
const KNOWN_MODES: [u16; 12] = [1, 6, 9, 25, 47, 1000, 1002, 1003, 1005, 1006, 1049, 2004];
/// Modes that are values of one setting each: the mouse mode (press; press and release; button
/// motion; any motion) and the mouse encoding (UTF-8; SGR). Setting one replaces the others;
/// resetting one returns to the default only when it is the one set.
const MOUSE_MODES: [u16; 4] = [9, 1000, 1002, 1003];
const MOUSE_ENCODINGS: [u16; 2] = [1005, 1006];

/// Where output left a setting of several modes ([`MOUSE_MODES`], [`MOUSE_ENCODINGS`]),
/// starting from a terminal in an unknown state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Setting {
    /// This mode is set (`None`: the default, none of them).
    Set(Option<u16>),
    /// Only resets came: whatever was set before stays, unless it is one of these.
    Reset(Vec<u16>),
}

impl Setting {
    /// The setting after `mode` is set or reset.
    fn change(setting: Option<Setting>, mode: u16, on: bool) -> Setting {
        match (setting, on) {
            (_, true) => Setting::Set(Some(mode)),
            (Some(Setting::Set(now)), false) => Setting::Set(now.filter(|&now| now != mode)),
            (Some(Setting::Reset(mut modes)), false) => {
                if !modes.contains(&mode) {
                    modes.push(mode);
                }
                Setting::Reset(modes)
            }
            (None, false) => Setting::Reset(vec![mode]),
        }
    }

    /// The sequences that bring a terminal there from any state; `default` is one of the
    /// setting's modes, set and reset to get to the default.
    fn sequences(&self, default: u16, bytes: &mut Vec<u8>) {
        match self {
            Setting::Set(Some(mode)) => bytes.extend_from_slice(format!("\x1b[?{mode}h").as_bytes()),
            Setting::Set(None) => bytes.extend_from_slice(format!("\x1b[?{default}h\x1b[?{default}l").as_bytes()),
            Setting::Reset(modes) => {
                for mode in modes {
                    bytes.extend_from_slice(format!("\x1b[?{mode}l").as_bytes());
                }
            }
        }
    }
}

const ESC: u8 = 0x1b;
/// Cancel and substitute: either ends an escape sequence unfinished.
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const DEL: u8 = 0x7f;

/// Follows escape sequences across the output it is given, chunk after chunk, and remembers
/// where the modes they set ended up.
#[derive(Debug, Default)]
pub(crate) struct ModeScanner {
    /// The escape sequence begun and not yet ended (empty: plain text).
    sequence: Vec<u8>,
    /// A full reset (`ESC c`) came: it goes first, and undoes what came before it.
    reset: bool,
    /// Where the modes were changed to since (or since the reset).
    modes: Modes,
}

/// The modes output changed, and where to.
#[derive(Debug, Default)]
struct Modes {
    /// Each known DEC private mode set (`true`) or reset, its last value only, in the order of
    /// those last changes (the alternate screens act on one another, so their order matters).
    private: Vec<(u16, bool)>,
    /// The mouse mode and the mouse encoding, when output changed them.
    mouse: Option<Setting>,
    encoding: Option<Setting>,
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
        if matches!(byte, CAN | SUB) {
            // Cancels the sequence, as it does in a terminal.
            self.sequence.clear();
            return;
        }
        if !(0x20..DEL).contains(&byte) {
            // Other controls inside a sequence are carried out by terminals, and DEL and bytes
            // past ASCII are ignored: the sequence goes on.
            return;
        }
        if self.sequence.len() == 1 {
            match byte {
                b'[' => self.sequence.push(byte),
                b'=' => self.modes.keypad = Some(true),
                b'>' => self.modes.keypad = Some(false),
                b'c' => {
                    self.reset = true;
                    self.modes = Modes::default();
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
                    && let Some(parameters) = private_parameters(parameters)
                {
                    self.modes.remember(parameters, byte == b'h');
                }
                self.sequence.clear();
            }
            _ => self.sequence.clear(),
        }
    }

    /// Follows output the emulator is given itself, only for the escape sequence it may end
    /// inside (the modes it sets are the emulator's already): output dropped right after it
    /// then continues that sequence here as it would have there. Called after [`Self::take`].
    pub(crate) fn follow_fed(&mut self, output: &[u8]) {
        self.scan(output);
        self.reset = false;
        self.modes = Modes::default();
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
        std::mem::take(&mut self.modes).sequences(&mut bytes);
        bytes.append(&mut self.sequence);
        bytes
    }
}

impl Modes {
    /// `ESC [ ? P1 ; P2 … h|l`: each mode's new value.
    fn remember(&mut self, parameters: &[u8], on: bool) {
        for parameter in parameters.split(|&byte| byte == b';').take(PARAMETER_LIMIT) {
            let Some(mode) = std::str::from_utf8(parameter).ok().and_then(|text| text.parse::<u16>().ok()) else {
                continue;
            };
            if MOUSE_MODES.contains(&mode) {
                self.mouse = Some(Setting::change(self.mouse.take(), mode, on));
            } else if MOUSE_ENCODINGS.contains(&mode) {
                self.encoding = Some(Setting::change(self.encoding.take(), mode, on));
            } else if KNOWN_MODES.contains(&mode) {
                self.private.retain(|&(known, _)| known != mode);
                self.private.push((mode, on));
            }
        }
    }

    /// The sequences that bring a terminal's modes here.
    fn sequences(self, bytes: &mut Vec<u8>) {
        for (mode, on) in self.private {
            bytes.extend_from_slice(format!("\x1b[?{mode}{}", if on { 'h' } else { 'l' }).as_bytes());
        }
        if let Some(mouse) = self.mouse {
            mouse.sequences(MOUSE_MODES[0], bytes);
        }
        if let Some(encoding) = self.encoding {
            encoding.sequences(MOUSE_ENCODINGS[0], bytes);
        }
        match self.keypad {
            Some(true) => bytes.extend_from_slice(b"\x1b="),
            Some(false) => bytes.extend_from_slice(b"\x1b>"),
            None => {}
        }
    }
}

/// The parameters of a DEC private sequence (what follows `ESC [ ?`, final byte excluded), as
/// the emulator takes them: intermediates after them (`$`, say) do not matter, but a private
/// marker among them (`<`, `=`, `>`, `?`), or a parameter after an intermediate, makes the
/// whole sequence one that is ignored (`None`).
fn private_parameters(bytes: &[u8]) -> Option<&[u8]> {
    let end = bytes.iter().position(|byte| (0x20..=0x2f).contains(byte)).unwrap_or(bytes.len());
    let (parameters, intermediates) = bytes.split_at(end);
    let ignored = parameters.iter().any(|byte| (0x3c..=0x3f).contains(byte))
        || intermediates.iter().any(|byte| (0x30..=0x3f).contains(byte));
    (!ignored).then_some(parameters)
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
        // Known modes only (7, autowrap, is not one the emulator keeps), in the order of their
        // last changes, then the mouse mode and encoding.
        let expected: &[u8] = b"\x1b[?25l\x1b[?1h\x1b[?2004h\x1b[?1049h\x1b[?1000h\x1b[?1006h\x1b>";
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
        // Six modes of their own, and one of the mouse modes and of the encodings.
        assert_eq!(scan_in_pieces(&many, 4096).iter().filter(|&&byte| byte == ESC).count(), 8);
        let text: Vec<u8> = (0..100_000u32).map(|index| b'a' + (index % 26) as u8).collect();
        assert!(scan_in_pieces(&text, 4096).is_empty());
        let mut long = b"\x1b[?".to_vec();
        long.extend(std::iter::repeat_n(b'1', 200));
        long.push(b'h');
        assert!(scan_in_pieces(&long, 7).is_empty());
    }

    /// The modes a fresh emulator ends up in.
    fn modes_of(emulator: &vt100::Parser) -> ([bool; 5], vt100::MouseProtocolMode, vt100::MouseProtocolEncoding) {
        let screen = emulator.screen();
        (
            [
                screen.alternate_screen(),
                screen.hide_cursor(),
                screen.application_cursor(),
                screen.application_keypad(),
                screen.bracketed_paste(),
            ],
            screen.mouse_protocol_mode(),
            screen.mouse_protocol_encoding(),
        )
    }

    #[test]
    fn strings_and_controls_are_read_as_the_emulator_reads_them() {
        // Strings (DCS, OSC, APC, PM, SOS) end at an escape, as in the VT500 state machine the
        // emulator (and xterm.js) follow: tmux's pass-through doubles the escape, so the mode
        // it wraps is a real one to them too. Text inside a string sets nothing.
        let outputs: [&[u8]; 10] = [
            // Modes that act on one another: the order of their last changes decides.
            b"\x1b[?1003h\x1b[?1000h\x1b[?1006h\x1b[?1005h\x1b[?1049h\x1b[?47l",
            b"\x1b[?1000h\x1b[?1002h\x1b[?1000l\x1b[?9h\x1b[?1002l",
            b"\x1bPtmux;\x1b\x1b[?1049h\x1b\\",
            b"\x1bP[?1049h\x1b\\\x1b[?25l",
            b"\x1b]0;title [?1049h\x07\x1b[?2004h",
            b"\x1b]2;\x1b[?1h\x07",
            b"\x1b_[?1049h\x1b\\\x1b=",
            b"\x1b^\x1b[?25l\x1b\\\x1bX[?1h\x1b\\",
            b"\x1b[?10\r49h\x1b[?25\x18l\x1b[?2004\x1a;h",
            b"\x1b[?1049h\x1b[?1049;25l\x1b[?1;2004h\x1b>\x1b=\x1bc\x1b[?1049h",
        ];
        for output in outputs {
            let mut direct = vt100::Parser::new(24, 80, 0);
            direct.process(output);
            for piece in 1..=output.len() {
                let mut replayed = vt100::Parser::new(24, 80, 0);
                replayed.process(&scan_in_pieces(output, piece));
                assert_eq!(
                    modes_of(&replayed),
                    modes_of(&direct),
                    "{:?} in pieces of {piece}",
                    String::from_utf8_lossy(output)
                );
            }
        }
    }

    #[test]
    fn random_output_leaves_the_same_modes_through_the_scanner_as_through_the_emulator() {
        // Pieces of sequences, strings, controls and text, strung together at random.
        let pieces: [&[u8]; 38] = [
            b"\x1b",
            b"\x1b[?",
            b"[",
            b"?",
            b"1049",
            b"47",
            b"25",
            b"2004",
            b"1000",
            b"1002",
            b"1003",
            b"9",
            b"1005",
            b"1006",
            b"h",
            b"l",
            b";",
            b"\x18",
            b"\x1a",
            b"\r",
            b"\x7f",
            b"\x80",
            "\u{e9}".as_bytes(),
            b"\x1bP",
            b"\x1b]0;",
            b"\x07",
            b"\x1b\\",
            b"=",
            b">",
            b"c",
            b"$",
            b"\x1b[?1000h",
            b"\x1b[?1003h",
            b"\x1b[?1000l",
            b"\x1b[?1005h",
            b"\x1b[?1006h",
            b"\x1b[?47l",
            b"\x1b[?1049h",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for case in 0..20_000 {
            let output: Vec<u8> = (0..1 + next(12)).flat_map(|_| pieces[next(pieces.len())].iter().copied()).collect();
            let mut direct = vt100::Parser::new(24, 80, 0);
            direct.process(&output);
            // The emulator is fed a first part itself (a terminal in any state, maybe inside a
            // sequence), and is given for the rest only what the scanner hands over.
            let fed = next(output.len() + 1);
            let piece = 1 + next(output.len());
            let mut replayed = vt100::Parser::new(24, 80, 0);
            let mut scanner = ModeScanner::default();
            replayed.process(&output[..fed]);
            scanner.follow_fed(&output[..fed]);
            for part in output[fed..].chunks(piece) {
                scanner.scan(part);
            }
            replayed.process(&scanner.take());
            assert_eq!(
                modes_of(&replayed),
                modes_of(&direct),
                "case {case}: {:?} fed up to {fed}, the rest in pieces of {piece}",
                String::from_utf8_lossy(&output)
            );
        }
    }

    #[test]
    fn a_sequence_cut_where_fed_output_ends_is_continued_in_the_dropped_output() {
        let mut emulator = vt100::Parser::new(24, 80, 0);
        let mut scanner = ModeScanner::default();
        // The emulator is given output ending inside a sequence, the rest is dropped.
        emulator.process(b"$ vim\r\n\x1b[?10");
        scanner.follow_fed(b"$ vim\r\n\x1b[?10");
        scanner.scan(b"49h\x1b[?25l~\r\n~\r\n");
        emulator.process(&scanner.take());
        emulator.process(b"~\r\n");
        assert!(emulator.screen().alternate_screen() && emulator.screen().hide_cursor());
        // A sequence the fed output ended inside and that nothing dropped continued: handing it
        // over again changes nothing.
        scanner.follow_fed(b"\x1b[?20");
        emulator.process(b"\x1b[?20");
        emulator.process(&scanner.take());
        emulator.process(b"04h");
        assert!(emulator.screen().bracketed_paste());
        // Modes the fed output set are not handed over again.
        scanner.follow_fed(b"\x1b[?1049l");
        assert!(scanner.take().is_empty());
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
