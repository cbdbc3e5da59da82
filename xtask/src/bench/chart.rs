//! Hand-written SVG charts, one per figure: horizontal bars, one group per target, one bar per
//! series (for example p50 and p99), each labelled with its value. No dependency.

use std::fmt::Write as _;

/// A chart file to write into `target/bench/`.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// The file name, e.g. `throughput.svg`.
    pub(crate) file: String,
    /// The SVG document.
    pub(crate) svg: String,
}

/// Series colours, in order.
const COLOURS: [&str; 4] = ["#3b6ea8", "#e08a2e", "#5a9e4b", "#a04a8f"];
/// Width of the label column, in pixels.
const LABEL_WIDTH: f64 = 190.0;
/// Width of the bar area, in pixels.
const BAR_WIDTH: f64 = 460.0;
/// Height of one bar.
const BAR_HEIGHT: f64 = 16.0;

/// What every chart of a run says under its title: the run, the date, the commit, the machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caption<'a>(pub(crate) &'a str);

/// A horizontal bar chart: `rows` of (label, one value per series), values in `unit`.
/// Missing values (NaN) draw no bar and read `–`.
pub(crate) fn bars(
    file: &str,
    title: &str,
    caption: Caption<'_>,
    unit: &str,
    series: &[&str],
    rows: &[(String, Vec<f64>)],
) -> Chart {
    let max = rows
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .filter(|value| value.is_finite())
        .fold(0.0, f64::max);
    let scale = if max > 0.0 { BAR_WIDTH / max } else { 0.0 };
    let group = BAR_HEIGHT * series.len() as f64 + 10.0;
    let top = 64.0;
    let height = top + group * rows.len() as f64 + 16.0;
    let width = LABEL_WIDTH + BAR_WIDTH + 90.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="8" y="18" font-size="14" font-weight="bold">{}</text>
<text x="8" y="34" font-size="10" fill="#555555">{}</text>
"##,
        escape(title),
        escape(caption.0)
    );
    // Legend.
    let mut x = 8.0;
    for (index, name) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let _ = writeln!(svg, r#"<rect x="{x:.0}" y="42" width="10" height="10" fill="{colour}"/>"#);
        let label = format!("{name} ({unit})");
        let _ = writeln!(svg, r#"<text x="{:.0}" y="51">{}</text>"#, x + 14.0, escape(&label));
        x += 24.0 + 7.0 * label.chars().count() as f64;
    }
    for (row, (label, values)) in rows.iter().enumerate() {
        let y = top + group * row as f64;
        let middle = y + BAR_HEIGHT * series.len() as f64 / 2.0 + 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.0}" y="{middle:.0}" text-anchor="end">{}</text>"#,
            LABEL_WIDTH - 8.0,
            escape(label)
        );
        for (index, value) in values.iter().enumerate() {
            let colour = COLOURS[index % COLOURS.len()];
            let bar_y = y + BAR_HEIGHT * index as f64;
            let length = if value.is_finite() { (value * scale).max(1.0) } else { 0.0 };
            let _ = writeln!(
                svg,
                r#"<rect x="{LABEL_WIDTH:.0}" y="{bar_y:.1}" width="{length:.1}" height="{:.0}" fill="{colour}"/>"#,
                BAR_HEIGHT - 2.0
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                LABEL_WIDTH + length + 4.0,
                bar_y + BAR_HEIGHT - 4.0,
                format_value(*value)
            );
        }
    }
    svg.push_str("</svg>\n");
    Chart { file: file.to_owned(), svg }
}

/// A value with about three significant digits, or `–`.
fn format_value(value: f64) -> String {
    if !value.is_finite() {
        "–".to_owned()
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// `text` escaped for SVG text and attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_bar_and_a_label_per_value() {
        let rows = vec![("wssh <native>".to_owned(), vec![57.6, 60.0]), ("ttyd".to_owned(), vec![f64::NAN, 1.0])];
        let chart = bars("x.svg", "Throughput & more", Caption("quick"), "MB/s", &["p50", "p99"], &rows);
        assert!(chart.svg.starts_with("<svg"));
        assert!(chart.svg.trim_end().ends_with("</svg>"));
        assert!(chart.svg.contains("wssh &lt;native&gt;"));
        assert!(chart.svg.contains("Throughput &amp; more"));
        assert_eq!(chart.svg.matches("<rect").count(), 1 + 2 + 4);
        assert!(chart.svg.contains(">57.6<") && chart.svg.contains(">–<"));
    }
}
