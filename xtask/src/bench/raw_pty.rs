//! The ceiling: the same programs on a PTY spawned in-process with `wssh_pty::PtyCommand`,
//! read straight from the master with no server, socket or framing in between.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use wssh_pty::{PtyCommand, PtyProcess, PtyReader, PtyWriter, WindowSize};

use super::target::{BoxFuture, COLS, Instance, Program, Programs, ROWS, Result, Target, Terminal, WireCount};

/// Bytes read from the master at most per [`Terminal::recv`], as the server does.
const CHUNK: usize = 64 * 1024;

/// The raw-PTY target.
pub(crate) struct RawPty {
    /// The command lines.
    programs: Arc<Programs>,
}

impl RawPty {
    /// A raw-PTY target running `programs`.
    pub(crate) fn new(programs: Arc<Programs>) -> RawPty {
        RawPty { programs }
    }
}

impl Target for RawPty {
    fn name(&self) -> &str {
        "raw PTY"
    }

    fn start(&self) -> BoxFuture<'_, Result<Box<dyn Instance>>> {
        let instance: Box<dyn Instance> = Box::new(RawPtyInstance { programs: self.programs.clone() });
        Box::pin(async move { Ok(instance) })
    }
}

/// The raw PTY "started": nothing runs until a terminal is opened.
struct RawPtyInstance {
    /// The command lines.
    programs: Arc<Programs>,
}

impl Instance for RawPtyInstance {
    fn server_pid(&self, _program: Program) -> Option<u32> {
        None
    }

    fn open(&self, program: Program) -> BoxFuture<'_, Result<Box<dyn Terminal>>> {
        Box::pin(async move {
            let argv = self.programs.argv(program);
            let process = PtyCommand::new(argv[0].clone())
                .args(argv[1..].iter().cloned())
                .dir(Programs::DIR)
                .size(WindowSize { cols: COLS, rows: ROWS })
                .spawn()?;
            let (reader, writer) = (process.reader(), process.writer());
            let terminal: Box<dyn Terminal> = Box::new(RawTerminal { process, reader, writer });
            Ok(terminal)
        })
    }
}

/// A program on a PTY of our own.
struct RawTerminal {
    /// The program.
    process: PtyProcess,
    /// The master, for reading.
    reader: PtyReader,
    /// The master, for writing.
    writer: PtyWriter,
}

impl Terminal for RawTerminal {
    fn send<'a>(&'a mut self, input: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.writer.write_all(input).await?;
            Ok(())
        })
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Bytes>>> {
        Box::pin(async move {
            let mut buffer = BytesMut::zeroed(CHUNK);
            let count = self.reader.read(&mut buffer).await?;
            if count == 0 {
                return Ok(None);
            }
            buffer.truncate(count);
            Ok(Some(buffer.freeze()))
        })
    }

    fn wire(&self) -> Option<WireCount> {
        None
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        let mut process = self.process;
        Box::pin(async move {
            let _ = process.terminate(Duration::from_millis(100)).await;
        })
    }
}
