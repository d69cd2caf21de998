//! QR codes drawn in a terminal, for `bastion users enroll-totp`: the `otpauth://` URI becomes a
//! QR symbol (the `qrcode` crate encodes it, error correction level M) drawn with Unicode half
//! blocks, two modules per character cell so modules come out roughly square, with the 4-module
//! quiet zone the standard asks for (the renderer's default). Dark modules are the block glyphs (ink on paper). On a
//! terminal the block is wrapped in ANSI colours, black on bright white, so it scans whatever the
//! terminal's own colours are; piped or with `NO_COLOR` set, the text is plain.
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use std::io::{IsTerminal, Write};

/// Black foreground on bright white background; reset.
const COLOURS_ON: &str = "\x1b[30;107m";
const COLOURS_OFF: &str = "\x1b[0m";

/// Why no code could be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw a QR code for this text: {0}")]
pub struct QrDrawError(qrcode::types::QrError);

/// `text` as a QR symbol in half blocks: one line per two module rows, one character per module
/// column, quiet zone included, lines joined with `\n`, no colours.
pub fn half_blocks(text: &str) -> Result<String, QrDrawError> {
    let code = QrCode::new(text.as_bytes()).map_err(QrDrawError)?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Dark)
        .light_color(Dense1x2::Light)
        .quiet_zone(true)
        .build())
}

/// [`half_blocks`] for display: with `colour`, every line is wrapped in black-on-white ANSI
/// colours so the symbol has the contrast a scanner needs on dark and light terminals alike.
pub fn for_display(text: &str, colour: bool) -> Result<String, QrDrawError> {
    let plain = half_blocks(text)?;
    if !colour {
        return Ok(plain);
    }
    Ok(plain
        .lines()
        .map(|line| format!("{COLOURS_ON}{line}{COLOURS_OFF}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Prints `uri` on its own line, then its QR code (coloured when stdout is a terminal and
/// `NO_COLOR` is unset). A URI too long for a QR code is still printed, with a note on stderr.
pub fn print_uri_with_code(uri: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{uri}")?;
    let colour = out.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match for_display(uri, colour) {
        Ok(block) => writeln!(out, "{block}")?,
        Err(e) => eprintln!("note: {e}; enter the URI above by hand"),
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Modules of light margin the renderer leaves (ISO/IEC 18004 asks for 4).
    const QUIET_ZONE: usize = 4;

    const URI: &str = "otpauth://totp/bastion:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=bastion&algorithm=SHA1&digits=6&period=30";

    /// The module matrix a half-block rendering shows: `true` is dark.
    fn modules(block: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in block.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (t, b) = match c {
                    ' ' => (false, false),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    '\u{2588}' => (true, true),
                    other => panic!("unexpected character {other:?} in the block"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    /// Decodes a half-block rendering the way a camera would: the modules scaled up to pixels
    /// and handed to rqrr's detector (finder patterns, grid, error correction).
    fn decode(block: &str) -> String {
        let m = modules(block);
        let scale = 6;
        let (h, w) = (m.len(), m[0].len());
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * scale, h * scale, |x, y| {
            if m[y / scale][x / scale] {
                0
            } else {
                255
            }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "exactly one QR symbol found");
        grids[0].decode().expect("the symbol decodes").1
    }

    #[test]
    fn rendered_block_decodes_back_to_the_uri() {
        let block = half_blocks(URI).unwrap();
        assert_eq!(decode(&block), URI);
        let other = URI.replace("alice", "dana");
        assert_eq!(decode(&half_blocks(&other).unwrap()), other);
    }

    #[test]
    fn block_has_square_modules_and_a_four_module_quiet_zone() {
        let code = QrCode::new(URI.as_bytes()).unwrap();
        let side = code.width() + 2 * QUIET_ZONE;
        let block = half_blocks(URI).unwrap();
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2), "two module rows per line");
        assert!(lines.iter().all(|l| l.chars().count() == side));
        let m = modules(&block);
        // The quiet zone is light all round (an odd side leaves one padding row, also light).
        for (y, row) in m.iter().enumerate() {
            for (x, dark) in row.iter().enumerate() {
                let in_margin = x < QUIET_ZONE
                    || y < QUIET_ZONE
                    || x >= side - QUIET_ZONE
                    || y >= side - QUIET_ZONE;
                if in_margin {
                    assert!(!dark, "module ({x}, {y}) of the quiet zone is dark");
                }
            }
        }
        // The top-left finder pattern starts right inside the margin: a dark 7-module row.
        assert!(m[QUIET_ZONE][QUIET_ZONE..QUIET_ZONE + 7].iter().all(|d| *d));
        assert!(!m[QUIET_ZONE][QUIET_ZONE + 7], "separator after the finder");
    }

    #[test]
    fn rendering_is_deterministic_and_depends_on_the_text() {
        assert_eq!(half_blocks(URI).unwrap(), half_blocks(URI).unwrap());
        assert_ne!(
            half_blocks(URI).unwrap(),
            half_blocks(&URI.replace("JBSW", "KBSW")).unwrap()
        );
    }

    #[test]
    fn colour_wraps_every_line_and_plain_has_no_escapes() {
        let plain = for_display(URI, false).unwrap();
        assert!(!plain.contains('\x1b'));
        let coloured = for_display(URI, true).unwrap();
        assert_eq!(coloured.lines().count(), plain.lines().count());
        for (c, p) in coloured.lines().zip(plain.lines()) {
            assert_eq!(c, format!("{COLOURS_ON}{p}{COLOURS_OFF}"));
        }
    }

    #[test]
    fn text_beyond_qr_capacity_is_an_error_not_a_panic() {
        let huge = "x".repeat(8000);
        assert!(half_blocks(&huge).is_err());
    }
}
