//! Minimal SVG line charts for the sweep plots in docs/plots/: linear axes
//! from zero (so linear growth shows as a straight line and anything
//! super-linear bends upward), one polyline with point markers per series,
//! a legend, no scripts and no external fonts. Output is deterministic, so
//! regenerating an unchanged plot gives an unchanged file.

use std::fmt::Write as _;

/// One named series of (x, y) points, in x order.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis labels and its series.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 56.0;
/// Colour-blind-safe (Okabe–Ito).
const COLOURS: [&str; 6] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

/// A "nice" step (1, 2 or 5 × 10^k) giving about `target` intervals up to `max`.
pub fn nice_step(max: f64, target: usize) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let raw = max / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= raw);
    step.unwrap_or(10.0 * magnitude)
}

/// A tick value without float noise or needless decimals.
fn tick_text(v: f64) -> String {
    let s = format!("{:.6}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The chart as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    let finite = |v: f64| v.is_finite().then_some(v);
    let max_x = chart.lines.iter().flat_map(|l| &l.points).filter_map(|p| finite(p.0)).fold(0.0, f64::max);
    let max_y = chart.lines.iter().flat_map(|l| &l.points).filter_map(|p| finite(p.1)).fold(0.0, f64::max);
    let (x_step, y_step) = (nice_step(max_x, 5), nice_step(max_y, 5));
    let x_top = (max_x / x_step).ceil().max(1.0) * x_step;
    let y_top = (max_y / y_step).ceil().max(1.0) * y_step;
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: f64| LEFT + x / x_top * plot_w;
    let py = |y: f64| TOP + plot_h - y / y_top * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(svg, "<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>");
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        WIDTH / 2.0,
        escape(&chart.title)
    );
    // Grid and ticks.
    let mut k = 0.0;
    while k <= y_top / y_step + 1e-9 {
        let v = k * y_step;
        let y = py(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            tick_text(v)
        );
        k += 1.0;
    }
    let mut k = 0.0;
    while k <= x_top / x_step + 1e-9 {
        let v = k * x_step;
        let x = px(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            TOP + plot_h,
            TOP + plot_h + 18.0,
            tick_text(v)
        );
        k += 1.0;
    }
    let _ = writeln!(
        svg,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#333\"/>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0,
        escape(&chart.x_label)
    );
    let _ = writeln!(
        svg,
        "<text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        TOP + plot_h / 2.0,
        escape(&chart.y_label)
    );
    // Series and legend.
    for (i, line) in chart.lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = line
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        for p in &points {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(svg, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{colour}\"/>");
        }
        let ly = TOP + 16.0 + i as f64 * 18.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LEFT + 12.0,
            LEFT + 36.0,
            LEFT + 42.0,
            ly + 4.0,
            escape(&line.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            title: "CPU per scrape vs mounts".into(),
            x_label: "mounts".into(),
            y_label: "ms".into(),
            lines: vec![
                Line { label: "opsmon <ours>".into(), points: vec![(1.0, 0.3), (100.0, 0.5), (400.0, 1.1)] },
                Line {
                    label: "node_exporter".into(),
                    points: vec![(1.0, 2.0), (100.0, 4.0), (400.0, f64::NAN)],
                },
            ],
        }
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(400.0, 5), 100.0);
        assert_eq!(nice_step(1.1, 5), 0.5);
        assert_eq!(nice_step(7.0, 5), 2.0);
        assert_eq!(nice_step(0.0, 5), 1.0);
        assert_eq!(tick_text(0.30000000000000004), "0.3");
        assert_eq!(tick_text(400.0), "400");
    }

    #[test]
    fn renders_a_wellformed_document_with_every_point() {
        let svg = render(&chart());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert!(!svg.contains("<script"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // Five finite points, the NaN left out.
        assert_eq!(svg.matches("<circle").count(), 5);
        assert!(svg.contains("opsmon &lt;ours&gt;"));
        assert!(!svg.contains("NaN"));
        // The largest x sits on the right edge of the plot (x axis 0..400).
        assert!(svg.contains(&format!("{:.1},", WIDTH - RIGHT)));
        assert_eq!(render(&chart()), svg, "deterministic");
    }
}
