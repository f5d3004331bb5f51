#![doc = include_str!("../README.md")]

mod spread;

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

pub use plotters::chart::SeriesLabelPosition;
pub use spread::Spread;

/// Any error while drawing.
pub type ChartError = Box<dyn std::error::Error + Send + Sync>;

/// Colours for names no rule below knows, in series order.
const COLORS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(150, 90, 40),
];

/// Each contender keeps its colour in every chart (tidepool's stands out),
/// whoever else is on it.
fn color(name: &str, i: usize) -> RGBColor {
    let base = name.split_whitespace().next().unwrap_or(name);
    let variant = name.contains("(no test)");
    match (base, variant) {
        ("tidepool" | "tidepool-postgres", _) => RGBColor(213, 43, 30),
        ("deadpool" | "deadpool-postgres", _) => RGBColor(0, 114, 178),
        ("bb8" | "bb8-postgres", false) => RGBColor(0, 158, 115),
        ("bb8-postgres", true) => RGBColor(120, 210, 170),
        ("qp", _) => RGBColor(230, 159, 0),
        ("mobc", _) => RGBColor(204, 121, 167),
        ("r2d2", _) => RGBColor(86, 180, 233),
        ("sqlx", false) => RGBColor(130, 60, 170),
        ("sqlx", true) => RGBColor(190, 150, 220),
        ("pgbench", _) => RGBColor(0, 0, 0),
        ("no", _) | ("connect", _) => RGBColor(110, 110, 110),
        ("fifo", _) => RGBColor(40, 40, 40),
        _ => COLORS[i % COLORS.len()],
    }
}

/// The segmented x range of `n` categories.
fn categories(n: usize) -> std::ops::Range<i32> {
    // plotters counts the end of an integer range as a category too.
    0..i32::try_from(n.saturating_sub(1).max(1)).unwrap_or(i32::MAX)
}

/// One line: a value (min / median / max over repetitions) per x category;
/// `None` where the contender did not run.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// One entry per x category.
    pub points: Vec<Option<Spread>>,
}

/// A line chart over categories, with a logarithmic y axis; each point
/// shows the median, with a whisker from min to max.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_desc: String,
    /// The x categories, left to right.
    pub x_ticks: Vec<String>,
    /// Y axis description.
    pub y_desc: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Where the legend goes (somewhere the lines are not).
    pub legend: SeriesLabelPosition,
}

fn center(i: usize) -> SegmentValue<i32> {
    SegmentValue::CenterOf(i32::try_from(i).unwrap_or(i32::MAX))
}

fn tick_label(ticks: &[String], v: &SegmentValue<i32>) -> String {
    match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => usize::try_from(*i)
            .ok()
            .and_then(|i| ticks.get(i))
            .cloned()
            .unwrap_or_default(),
        SegmentValue::Last => String::new(),
    }
}

/// Formats an axis value with about three significant digits.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a > 0.0 && a < 1.0 {
        let decimals = (-a.log10()).ceil() as usize + 1;
        format!("{v:.decimals$}")
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl LineChart {
    /// Draws the chart to `path` (an `.svg` file).
    ///
    /// # Errors
    /// When there is nothing positive to plot or the file cannot be written.
    pub fn draw(&self, path: &Path) -> Result<(), ChartError> {
        draw_stacked(std::slice::from_ref(self), path)
    }

    /// Draws the chart on one panel of a drawing.
    fn draw_on(&self, root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ChartError> {
        let values: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().flatten())
            .flat_map(|p| [p.min, p.max])
            .filter(|v| *v > 0.0 && v.is_finite())
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(0.0, f64::max);
        if values.is_empty() {
            return Err(format!("nothing to plot in {:?}", self.title).into());
        }
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(75)
            .build_cartesian_2d(
                categories(self.x_ticks.len()).into_segmented(),
                (lo / 1.3..hi * 1.3).log_scale(),
            )?;
        let ticks = &self.x_ticks;
        let x_fmt = |v: &SegmentValue<i32>| tick_label(ticks, v);
        let y_fmt = |v: &f64| short_number(*v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(self.x_ticks.len())
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .draw()?;
        // The first series (tidepool) is drawn again at the end, on top,
        // so that a contender with the same figures does not hide it.
        let on_top = self.series.first().map(|s| (0, s, false));
        let all = self.series.iter().enumerate().map(|(i, s)| (i, s, true));
        for (i, s, labelled) in all.chain(on_top) {
            let c = color(&s.name, i);
            let width = if i == 0 { 3 } else { 2 };
            let points: Vec<(SegmentValue<i32>, f64)> = s
                .points
                .iter()
                .enumerate()
                .filter_map(|(x, p)| p.map(|p| (center(x), p.median)))
                .collect();
            let line = chart.draw_series(LineSeries::new(points.clone(), c.stroke_width(width)))?;
            if labelled {
                line.label(s.name.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(3))
                });
            }
            chart.draw_series(
                points
                    .iter()
                    .map(|(x, y)| Circle::new((x.clone(), *y), 3, c.filled())),
            )?;
            chart.draw_series(s.points.iter().enumerate().filter_map(|(x, p)| {
                p.map(|p| PathElement::new(vec![(center(x), p.min), (center(x), p.max)], c))
            }))?;
        }
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}

/// Draws `charts` into one SVG file at `path`, one panel under another
/// (each 860 × 500).
///
/// # Errors
/// When there are no charts, a chart has nothing positive to plot, or the
/// file cannot be written.
pub fn draw_stacked(charts: &[LineChart], path: &Path) -> Result<(), ChartError> {
    if charts.is_empty() {
        return Err("no chart to draw".into());
    }
    let height = 500 * u32::try_from(charts.len()).unwrap_or(u32::MAX / 500);
    let root = SVGBackend::new(path, (860, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((charts.len(), 1));
    for (chart, panel) in charts.iter().zip(&panels) {
        chart.draw_on(panel)?;
    }
    root.present()?;
    Ok(())
}

/// A bar chart: one bar (the median) per contender, with a min–max whisker.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// Caption.
    pub title: String,
    /// Y axis description.
    pub y_desc: String,
    /// `(name, spread)` per bar, left to right.
    pub bars: Vec<(String, Spread)>,
}

impl BarChart {
    /// Draws the chart to `path` (an `.svg` file).
    ///
    /// # Errors
    /// When there are no bars or the file cannot be written.
    pub fn draw(&self, path: &Path) -> Result<(), ChartError> {
        if self.bars.is_empty() {
            return Err(format!("nothing to plot in {:?}", self.title).into());
        }
        let hi = self.bars.iter().map(|(_, s)| s.max).fold(0.0, f64::max);
        let root = SVGBackend::new(path, (860, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(75)
            .build_cartesian_2d(categories(self.bars.len()).into_segmented(), 0.0..hi * 1.15)?;
        let ticks: Vec<String> = self.bars.iter().map(|(name, _)| name.clone()).collect();
        let x_fmt = |v: &SegmentValue<i32>| tick_label(&ticks, v);
        let y_fmt = |v: &f64| short_number(*v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(self.bars.len())
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .y_desc(self.y_desc.as_str())
            .draw()?;
        chart.draw_series(self.bars.iter().enumerate().map(|(i, (name, s))| {
            let x0 = SegmentValue::Exact(i32::try_from(i).unwrap_or(i32::MAX));
            let x1 = SegmentValue::Exact(i32::try_from(i + 1).unwrap_or(i32::MAX));
            let mut bar = Rectangle::new([(x0, 0.0), (x1, s.median)], color(name, i).filled());
            bar.set_margin(0, 0, 18, 18);
            bar
        }))?;
        chart.draw_series(self.bars.iter().enumerate().map(|(i, (_, s))| {
            PathElement::new(
                vec![(center(i), s.min), (center(i), s.max)],
                BLACK.stroke_width(2),
            )
        }))?;
        chart.draw_series(self.bars.iter().enumerate().map(|(i, (_, s))| {
            Text::new(
                short_number(s.median),
                (center(i), s.max + hi * 0.03),
                ("sans-serif", 15).into_font().color(&BLACK),
            )
        }))?;
        root.present()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(v: f64) -> Option<Spread> {
        Some(Spread {
            min: v * 0.9,
            median: v,
            max: v * 1.1,
        })
    }

    #[test]
    fn draws_svg_files() {
        let dir = std::env::temp_dir().join(format!("tidepool-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = LineChart {
            title: "t".into(),
            x_desc: "workers".into(),
            x_ticks: vec!["4".into(), "16".into()],
            y_desc: "µs".into(),
            series: vec![
                Series {
                    name: "a".into(),
                    points: vec![spread(10.0), spread(100.0)],
                },
                Series {
                    name: "b".into(),
                    points: vec![spread(20.0), None],
                },
            ],
            legend: SeriesLabelPosition::UpperLeft,
        };
        line.draw(&dir.join("line.svg")).unwrap();
        draw_stacked(&[line.clone(), line.clone()], &dir.join("two.svg")).unwrap();
        let two = std::fs::read_to_string(dir.join("two.svg")).unwrap();
        assert!(two.contains(r#"height="1000""#), "{two}");
        assert!(draw_stacked(&[], &dir.join("none.svg")).is_err());
        let svg = std::fs::read_to_string(dir.join("line.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("workers"), "{svg}");
        let bars = BarChart {
            title: "b".into(),
            y_desc: "ns".into(),
            bars: vec![("a".into(), spread(5.0).unwrap())],
        };
        bars.draw(&dir.join("bars.svg")).unwrap();
        assert!(
            std::fs::read_to_string(dir.join("bars.svg"))
                .unwrap()
                .contains("<rect")
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(short_number(1234.0), "1234");
        assert_eq!(short_number(45_000.0), "45k");
        assert_eq!(short_number(2.5), "2.50");
        assert_eq!(short_number(0.002), "0.0020");
        assert_eq!(color("bb8", 5), color("bb8-postgres", 0));
        assert_ne!(color("bb8-postgres", 0), color("bb8-postgres (no test)", 0));
    }
}
