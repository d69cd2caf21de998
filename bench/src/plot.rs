//! PNG bar charts (plotters, bitmap backend): one group of bars per configuration, one bar per
//! target. Text is rendered with DejaVu Sans read from the system (Debian's fonts-dejavu-core),
//! so no fontconfig/freetype library is needed.
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::OnceLock;

/// Where Debian puts DejaVu Sans.
const FONT_CANDIDATES: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Bars to draw: `series[i].1[g]` is the height of series `i` in group `g`.
#[derive(Debug, Clone)]
pub struct BarGroups {
    pub title: String,
    pub y_label: String,
    pub groups: Vec<String>,
    pub series: Vec<(String, Vec<f64>)>,
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(0x4c, 0x72, 0xb0),
    RGBColor(0xdd, 0x84, 0x52),
    RGBColor(0x55, 0xa8, 0x68),
    RGBColor(0xc4, 0x4e, 0x52),
];

/// Registers the font once; an error names the paths tried.
fn ensure_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = FONT_CANDIDATES
                .iter()
                .find_map(|p| std::fs::read(p).ok())
                .ok_or_else(|| {
                    format!(
                        "no DejaVu Sans font at {} (apt install fonts-dejavu-core)",
                        FONT_CANDIDATES.join(" or ")
                    )
                })?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| "DejaVu Sans did not load as a font".to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Draws `bars` into a PNG at `path`.
pub fn grouped_bars(path: &Path, bars: &BarGroups) -> anyhow::Result<()> {
    ensure_font()?;
    let groups = bars.groups.len().max(1);
    let width = (140 * groups as u32).clamp(640, 2400);
    let root = BitMapBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = bars
        .series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.3 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(&bars.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..groups as f64, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(bars.y_label.as_str())
        .label_style(("sans-serif", 14))
        .draw()?;
    let n = bars.series.len().max(1) as f64;
    let slot = 0.8 / n;
    for (i, (name, values)) in bars.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(values.iter().enumerate().map(|(g, v)| {
                let x0 = g as f64 + 0.1 + slot * i as f64;
                Rectangle::new([(x0, 0.0), (x0 + slot * 0.95, *v)], colour.filled())
            }))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    // Group names under the x axis, centred on their group.
    let area = chart.plotting_area();
    for (g, label) in bars.groups.iter().enumerate() {
        let (x, y) = area.map_coordinate(&(g as f64 + 0.5, 0.0));
        let style = TextStyle::from(("sans-serif", 13).into_font()).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ),
        );
        root.draw(&Text::new(label.as_str(), (x, y + 8), style))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_when_the_font_is_there() {
        if FONT_CANDIDATES.iter().all(|p| !Path::new(p).exists()) {
            eprintln!("skipped: no DejaVu Sans installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.png");
        let bars = BarGroups {
            title: "test".into(),
            y_label: "tps".into(),
            groups: vec!["select simple c1".into(), "select simple c8".into()],
            series: vec![
                ("direct".into(), vec![100.0, 200.0]),
                ("bastion".into(), vec![90.0, 150.0]),
            ],
        };
        grouped_bars(&path, &bars).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 2000);
    }
}
