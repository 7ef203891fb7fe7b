//! Inline SVG charts for the HTML report, drawn with plotters' SVG backend: the latency
//! percentile spectrum, time series with phase bands, probe series.

use plotters::prelude::*;

/// A named line of (x, y) points.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A shaded span of the x axis (a phase).
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub name: String,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn bounds(lines: &[Line]) -> Option<((f64, f64), (f64, f64))> {
    let pts = lines.iter().flat_map(|l| l.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    (x0 <= x1).then(|| {
        let pad = ((y1 - y0.min(0.0)) * 0.08).max(1e-9);
        ((x0, if x1 > x0 { x1 } else { x0 + 1.0 }), (y0.min(0.0), y1 + pad))
    })
}

/// Formats an x-axis value.
pub type Fmt<'a> = &'a dyn Fn(&f64) -> String;

/// A line chart; `x_fmt` labels the x axis and `x_labels` (when given) how many labels it
/// gets. Returns the SVG text, or None without data.
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    bands: &[Band],
    x_fmt: Fmt,
    x_labels: Option<usize>,
) -> Option<String> {
    let ((x0, x1), (y0, y1)) = bounds(lines)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (860, 320)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .ok()?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_desc).y_desc(y_desc).x_label_formatter(x_fmt).light_line_style(WHITE.mix(0.0));
        if let Some(n) = x_labels {
            mesh.x_labels(n);
        }
        mesh.draw().ok()?;
        for (i, b) in bands.iter().enumerate() {
            let shade = if i % 2 == 0 { RGBColor(230, 236, 245) } else { RGBColor(245, 245, 245) };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(b.from.max(x0), y0), (b.to.min(x1), y1)],
                    shade.filled(),
                )))
                .ok()?;
            chart
                .draw_series(std::iter::once(Text::new(
                    b.name.clone(),
                    (b.from.max(x0), y1),
                    ("sans-serif", 11).into_font().color(&RGBColor(90, 90, 90)),
                )))
                .ok()?;
        }
        for (i, l) in lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), color.stroke_width(2)))
                .ok()?
                .label(l.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

/// x position of percentile p on the spectrum: -log10(1 - p), so 90 % is 1, 99 % is 2.
pub fn spectrum_x(p: f64) -> f64 {
    -(1.0 - p).log10()
}

/// Labels for the spectrum's x axis.
pub fn spectrum_label(x: &f64) -> String {
    let p = (1.0 - 10f64.powf(-x)) * 100.0;
    let s = format!("{p:.3}");
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_svg() {
        let l = vec![Line { name: "a <b>".into(), points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)] }];
        let b = vec![Band { from: 0.0, to: 1.0, name: "warmup".into() }];
        let svg = lines("t", "x", "y", &l, &b, &|x| format!("{x}"), None).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("polyline") && svg.contains("a &lt;b&gt;"),
            "{}",
            &svg[..200.min(svg.len())]
        );
        assert!(lines("t", "x", "y", &[], &[], &|x| format!("{x}"), None).is_none());
        assert_eq!(spectrum_label(&spectrum_x(0.99)), "99%");
    }
}
