//! Reading text back from the emulated screen — a row's prompt prefix, a logical line that wraps
//! over several rows — and counting how far the screen scrolled while output was fed, which
//! vt100 only shows through its scrollback.

use vt100::Screen;

/// Counts rows scrolled off the top during one `feed_output`.
///
/// vt100 keeps a bounded scrollback and, while the view is scrolled back, moves the view offset
/// along with each new scrolled row. Pinning the offset at 1 before feeding therefore turns it
/// into a counter (until it reaches the scrollback's capacity); before anything has ever scrolled
/// the scrollback's length is the counter instead.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ScrollProbe {
    pinned: bool,
    len_at_start: usize,
    capacity: usize,
}

impl ScrollProbe {
    /// Prepares `screen` for counting; call before processing output.
    pub(crate) fn start(screen: &mut Screen, capacity: usize) -> Self {
        let len = scrollback_rows(screen);
        let pinned = len >= 1;
        screen.set_scrollback(usize::from(pinned));
        Self {
            pinned,
            len_at_start: len,
            capacity,
        }
    }

    /// Rows scrolled since [`start`](Self::start), or `None` when too many to count or the
    /// scrollback was reset (terminal reset, alternate screen).
    pub(crate) fn scrolled(&self, screen: &mut Screen) -> Option<u64> {
        let offset = screen.scrollback();
        let len = scrollback_rows(screen);
        let (count, counter) = if self.pinned {
            (offset.checked_sub(1)?, offset)
        } else {
            (len.checked_sub(self.len_at_start)?, len)
        };
        if counter >= self.capacity {
            return None;
        }
        u64::try_from(count).ok()
    }
}

/// Number of rows currently held in the scrollback; leaves the view offset as it was.
fn scrollback_rows(screen: &mut Screen) -> usize {
    let offset = screen.scrollback();
    screen.set_scrollback(usize::MAX);
    let rows = screen.scrollback();
    screen.set_scrollback(offset);
    rows
}

/// Text of `row` in columns `from..to`, empty cells read as spaces.
fn cells_text(screen: &Screen, row: u16, from: u16, to: u16) -> String {
    let mut text = String::new();
    for col in from..to {
        match screen.cell(row, col) {
            Some(cell) if cell.is_wide_continuation() => {}
            Some(cell) if cell.has_contents() => text.push_str(cell.contents()),
            _ => text.push(' '),
        }
    }
    text
}

/// The text of `row` before column `col`: the prompt, when `col` is where input starts.
pub(crate) fn row_prefix(screen: &Screen, row: u16, col: u16) -> String {
    cells_text(screen, row, 0, col)
}

/// The last row of the logical line starting at `row` (rows joined by auto-wrap).
pub(crate) fn logical_last_row(screen: &Screen, row: u16) -> u16 {
    let (rows, _) = screen.size();
    let mut last = row;
    while screen.row_wrapped(last) && last.saturating_add(1) < rows {
        last += 1;
    }
    last
}

/// The first row of the logical line that contains `row`.
pub(crate) fn logical_first_row(screen: &Screen, row: u16) -> u16 {
    let mut first = row;
    while first > 0 && screen.row_wrapped(first - 1) {
        first -= 1;
    }
    first
}

/// The logical line from (`row`, `col`) through `last_row`, trailing spaces trimmed.
pub(crate) fn logical_line(screen: &Screen, row: u16, col: u16, last_row: u16) -> String {
    let (_, cols) = screen.size();
    let mut text = cells_text(screen, row, col, cols);
    for next in row.saturating_add(1)..=last_row {
        if next > row {
            text.push_str(&cells_text(screen, next, 0, cols));
        }
    }
    text.truncate(text.trim_end().len());
    text
}

/// Whether `row` shows nothing at all.
pub(crate) fn row_is_blank(screen: &Screen, row: u16) -> bool {
    let (_, cols) = screen.size();
    (0..cols).all(|col| {
        screen
            .cell(row, col)
            .is_none_or(|cell| !cell.has_contents())
    })
}

/// Whether the last column of `row` holds a character (the cursor then waits to wrap).
pub(crate) fn row_is_full(screen: &Screen, row: u16) -> bool {
    let (_, cols) = screen.size();
    cols.checked_sub(1)
        .and_then(|last| screen.cell(row, last))
        .is_some_and(vt100::Cell::has_contents)
}
