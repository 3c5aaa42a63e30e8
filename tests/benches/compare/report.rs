//! The results: a table on stdout, the same figures as JSON, and a chart of time per command
//! against stream length.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

/// Which way is better for a figure.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// One line of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub figure: String,
    pub metric: String,
    pub unit: &'static str,
    pub ours: Option<f64>,
    pub theirs: Option<f64>,
    /// What `theirs` is, when not cqrs-es (e.g. "raw INSERT floor", "serde_json").
    pub against: &'static str,
    pub better: Better,
    /// How many times better ours is (> 1: ours is better).
    pub ratio: Option<f64>,
    pub note: String,
}

impl Row {
    pub fn new(
        figure: &str,
        metric: impl Into<String>,
        unit: &'static str,
        better: Better,
    ) -> Self {
        Row {
            figure: figure.into(),
            metric: metric.into(),
            unit,
            ours: None,
            theirs: None,
            against: "cqrs-es",
            better,
            ratio: None,
            note: String::new(),
        }
    }

    pub fn ours(mut self, value: f64) -> Self {
        self.ours = Some(value);
        self.update_ratio()
    }

    pub fn theirs(mut self, value: f64) -> Self {
        self.theirs = Some(value);
        self.update_ratio()
    }

    /// `theirs` from a peer's runs, or, when they failed, why the column is empty.
    pub fn peer(self, measured: Result<f64, String>) -> Self {
        match measured {
            Ok(value) => self.theirs(value),
            Err(reason) => self.also_note(reason),
        }
    }

    pub fn against(mut self, against: &'static str) -> Self {
        self.against = against;
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// Adds `note` after the note already there.
    pub fn also_note(mut self, note: impl Into<String>) -> Self {
        let note = note.into();
        if self.note.is_empty() {
            self.note = note;
        } else if !note.is_empty() {
            self.note = format!("{}; {note}", self.note);
        }
        self
    }

    fn update_ratio(mut self) -> Self {
        self.ratio = match (self.ours, self.theirs, self.better) {
            (Some(ours), Some(theirs), Better::Higher) if theirs > 0.0 => Some(ours / theirs),
            (Some(ours), Some(theirs), Better::Lower) if ours > 0.0 => Some(theirs / ours),
            _ => None,
        };
        self
    }
}

fn format_value(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "-".into(),
        Some(v) if unit == "ratio" || unit == "%" => format!("{v:.2}"),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// The table as text.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<4} {:<58} {:>12} {:>12} {:>9}  {:<20} note",
        "fig", "measure", "ours", "other", "ours ×", "other is"
    );
    let _ = writeln!(out, "{}", "-".repeat(140));
    for row in rows {
        let ratio = row
            .ratio
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}×"));
        let _ = writeln!(
            out,
            "{:<4} {:<58} {:>12} {:>12} {:>9}  {:<20} {}",
            row.figure,
            format!("{} ({})", row.metric, row.unit),
            format_value(row.ours, row.unit),
            format_value(row.theirs, row.unit),
            ratio,
            if row.theirs.is_some() {
                row.against
            } else {
                ""
            },
            row.note
        );
    }
    out
}

/// Writes `rows` as JSON.
pub fn write_json(path: &Path, machine: &str, rows: &[Row]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let document = serde_json::json!({ "machine": machine, "rows": rows });
    std::fs::write(
        path,
        serde_json::to_string_pretty(&document).unwrap_or_default(),
    )
}

/// Draws µs per command against stream length, one line per framework, as SVG.
pub fn write_chart(
    path: &Path,
    ours: &[(u64, f64)],
    theirs: &[(u64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let max_length = ours.iter().chain(theirs).map(|p| p.0).max().unwrap_or(1) as f64;
    let max_time = ours
        .iter()
        .chain(theirs)
        .map(|p| p.1)
        .fold(1.0_f64, f64::max)
        * 2.0;
    let min_time = ours
        .iter()
        .chain(theirs)
        .map(|p| p.1)
        .fold(f64::MAX, f64::min)
        .max(0.01)
        / 2.0;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "In memory: time per command against stream length",
            ("sans-serif", 20),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (50.0..max_length * 1.5).log_scale(),
            (min_time..max_time).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("events in the stream")
        .y_desc("µs per command")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .draw()?;
    let series = [("ours", ours, &BLUE), ("cqrs-es 0.5", theirs, &RED)];
    for (name, points, color) in series {
        let color = *color;
        let data: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x as f64, y)).collect();
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            data.into_iter()
                .map(|point| Circle::new(point, 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}

/// The median of some measurements.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
