//! Quality against embedding dimension: one curve per compression method, the dims evenly
//! spaced in order (halvings are equal steps) and labelled with their values.

use plotters::prelude::*;

use super::{colour, draw_legend, font, padded, plot_err, px, render, tick, with_legend, Key, Png};
use crate::report::inputs::DimCurve;

const W: u32 = 1000;
const H: u32 = 460;

/// nDCG@10 (or `metric`) at each dim of every method in `curves`, all evaluated on `task`.
pub fn quality_by_dim(task: &str, curves: &[DimCurve], metric: &str) -> anyhow::Result<Png> {
    let mut dims: Vec<usize> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .collect();
    dims.sort_unstable();
    dims.dedup();
    let at = |d: usize| dims.binary_search(&d).unwrap_or(0) as f64;
    let points = |c: &DimCurve| -> Vec<(f64, f64)> {
        c.points
            .iter()
            .filter_map(|(d, m)| Some((at(*d), m.get(metric)?)))
            .collect()
    };
    let all: Vec<(f64, f64)> = curves.iter().flat_map(points).collect();
    let (xlo, xhi) = (0.0, dims.len().saturating_sub(1) as f64);
    let (ylo, yhi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let bytes = render(W, H + 40, |root| {
        let (plot, legend) = with_legend(root);
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("{metric} by dimension ({task})"), font(20))
            .margin(px(12))
            .x_label_area_size(px(48))
            .y_label_area_size(px(78))
            .build_cartesian_2d((xlo - 0.25)..(xhi + 0.25), padded(ylo, yhi))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("dimensions")
            .y_desc(metric)
            .axis_desc_style(font(15))
            .label_style(font(13))
            .x_labels(dims.len().max(2))
            .y_labels(7)
            .x_label_formatter(&|v| match (v - v.round()).abs() < 1e-6 && *v >= 0.0 {
                true => dims
                    .get(v.round() as usize)
                    .map_or(String::new(), usize::to_string),
                false => String::new(),
            })
            .y_label_formatter(&|v| tick(*v))
            .light_line_style(RGBColor(235, 235, 235))
            .axis_style(BLACK.stroke_width(px(1)))
            .draw()
            .map_err(plot_err)?;
        let mut keys = Vec::new();
        for (i, c) in curves.iter().enumerate() {
            let col = colour(i);
            let pts = points(c);
            chart
                .draw_series(LineSeries::new(pts.clone(), col.stroke_width(px(2))))
                .map_err(plot_err)?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, px(3), col.filled())))
                .map_err(plot_err)?;
            keys.push((c.method.clone(), Key::Line(col, 2, false)));
        }
        draw_legend(&legend, "method", &keys)
    })?;
    Ok(Png {
        name: format!(
            "dims-{}",
            task.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        ),
        caption: format!(
            "{metric} of each method at each embedding dimension on {task} (dims evenly spaced in order)."
        ),
        bytes,
    })
}
