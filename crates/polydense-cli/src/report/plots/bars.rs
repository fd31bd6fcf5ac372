//! Test-set comparison of systems: one group of bars per language, one bar per system.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{colour, draw_legend, font, plot_err, px, render, tick, with_legend, Key, Png};
use crate::report::inputs::System;

/// Label of the group holding the overall means.
pub const ALL: &str = "all";

/// Grouped bars of `metric` per language (and over all queries, last), one colour per
/// system; `None` when no system reports the metric.
pub fn system_bars(systems: &[System], metric: &str) -> anyhow::Result<Option<Png>> {
    let mut langs: Vec<String> = systems
        .iter()
        .flat_map(|s| s.report.per_lang.keys().cloned())
        .collect();
    langs.sort();
    langs.dedup();
    langs.push(ALL.to_string());
    let value = |s: &System, lang: &str| match lang {
        ALL => s.report.overall.get(metric),
        l => s.report.per_lang.get(l).and_then(|m| m.get(metric)),
    };
    let hi = systems
        .iter()
        .flat_map(|s| langs.iter().filter_map(move |l| value(s, l)))
        .fold(f64::NEG_INFINITY, f64::max);
    if !hi.is_finite() {
        return Ok(None);
    }
    // Metrics here lie in [0, 1]; the axis ends at 1 unless a value passes it.
    let top = if hi <= 1.0 { 1.0 } else { hi * 1.08 };
    let groups = langs.len();
    let n = systems.len().max(1);
    let bar = 0.8 / n as f64;
    let width = (240 + 64 * groups as u32 + 12 * (n as u32).saturating_sub(2) * groups as u32)
        .clamp(800, 1400);
    let bytes = render(width, 480, |root| {
        let (plot, legend) = with_legend(root);
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("Test {metric} per language"), font(20))
            .margin(px(12))
            .x_label_area_size(px(48))
            .y_label_area_size(px(70))
            .build_cartesian_2d(0.0..groups as f64, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("query language")
            .y_desc(format!("{metric} (0-1)"))
            .axis_desc_style(font(15))
            .label_style(font(14))
            // Group names are drawn below at the group centres: plotters' own x labels
            // fall on round numbers, not on categories.
            .x_labels(0)
            .y_labels(6)
            .y_label_formatter(&|v| tick(*v))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215).stroke_width(px(1)))
            .axis_style(BLACK.stroke_width(px(1)))
            .draw()
            .map_err(plot_err)?;
        let mut keys = Vec::new();
        for (j, s) in systems.iter().enumerate() {
            let c = colour(j);
            chart
                .draw_series(langs.iter().enumerate().filter_map(|(i, l)| {
                    let v = value(s, l)?;
                    let x0 = i as f64 + 0.1 + j as f64 * bar;
                    Some(Rectangle::new(
                        [(x0, 0.0), (x0 + bar * 0.92, v)],
                        c.filled(),
                    ))
                }))
                .map_err(plot_err)?;
            keys.push((s.name.clone(), Key::Box(c)));
        }
        let style = font(14).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, l) in langs.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            plot.draw(&Text::new(l.clone(), (x, y + px(7)), style.clone()))
                .map_err(plot_err)?;
        }
        draw_legend(&legend, "system", &keys)
    })?;
    Ok(Some(Png {
        name: format!("test-{}", metric.replace('@', "-at-")),
        caption: format!(
            "Test {metric} of each system per query language, and over all queries (\"{ALL}\")."
        ),
        bytes,
    }))
}
