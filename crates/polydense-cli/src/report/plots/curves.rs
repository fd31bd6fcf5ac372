//! Training curves over optimiser steps: loss (with re-clustering events), learning rate,
//! the dev metric, and the number of clusters.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, draw_legend, font, padded, plot_err, px, render, tick, with_legend, Key, Png};
use crate::report::inputs::{ClusterRun, DevEval};
use polydense_train::StepRecord;

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

const W: u32 = 1000;
const H: u32 = 460;

/// The axes, grid and title of a chart over steps.
fn frame<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    y_desc: &str,
) -> anyhow::Result<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(20))
        .margin(px(12))
        .x_label_area_size(px(48))
        .y_label_area_size(px(78))
        .build_cartesian_2d(x, y)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("optimiser step")
        .y_desc(y_desc)
        .axis_desc_style(font(15))
        .label_style(font(13))
        .x_labels(8)
        .y_labels(7)
        // Steps are whole: a short run's axis would otherwise label 39.5 as a second "40".
        .x_label_formatter(&|v| match (v - v.round()).abs() < 1e-6 {
            true => tick(*v),
            false => String::new(),
        })
        .y_label_formatter(&|v| tick(*v))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210).stroke_width(px(1)))
        .axis_style(BLACK.stroke_width(px(1)))
        .draw()
        .map_err(plot_err)?;
    Ok(chart)
}

/// x range over the steps, never empty.
fn step_range(first: u64, last: u64) -> std::ops::Range<f64> {
    let (a, b) = (first as f64, last as f64);
    match b > a {
        true => a..b,
        false => (a - 1.0).max(0.0)..(a + 1.0),
    }
}

/// Trailing mean over `w` values, to read the trend through noisy per-batch losses.
fn moving_average(v: &[f64], w: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i];
        if i >= w {
            sum -= v[i - w];
        }
        out.push(sum / (i + 1).min(w) as f64);
    }
    out
}

/// Loss per step with its moving average, the named parts of a composite loss (smoothed the
/// same way), and clustering runs as dashed vertical lines.
pub fn training_loss(steps: &[StepRecord], clusters: &[ClusterRun]) -> anyhow::Result<Png> {
    let loss: Vec<f64> = steps.iter().map(|s| s.loss).collect();
    let w = (steps.len() / 50).max(1);
    let smooth = moving_average(&loss, w);
    let names: std::collections::BTreeSet<&String> =
        steps.iter().flat_map(|s| s.loss_parts.keys()).collect();
    let parts: Vec<(&String, Vec<(f64, f64)>)> = names
        .into_iter()
        .map(|name| {
            let points: Vec<(u64, f64)> = steps
                .iter()
                .filter_map(|s| s.loss_parts.get(name).map(|&v| (s.step, v)))
                .collect();
            let values: Vec<f64> = points.iter().map(|p| p.1).collect();
            let smooth = moving_average(&values, w);
            (
                name,
                points
                    .iter()
                    .zip(smooth)
                    .map(|(p, m)| (p.0 as f64, m))
                    .collect(),
            )
        })
        .collect();
    let all = loss
        .iter()
        .copied()
        .chain(parts.iter().flat_map(|(_, p)| p.iter().map(|x| x.1)));
    let lo = all.clone().fold(f64::INFINITY, f64::min);
    let hi = all.fold(f64::NEG_INFINITY, f64::max);
    // The axis also spans clustering runs before the first logged step (the initial one
    // runs at step 0), so every run gets its line.
    let first = clusters
        .iter()
        .map(|c| c.step)
        .fold(steps[0].step, u64::min);
    let x = step_range(first, steps[steps.len() - 1].step);
    let y = padded(lo, hi);
    let bytes = render(W, H, |root| {
        let (plot, legend) = with_legend(root);
        let mut chart = frame(
            &plot,
            "Training loss",
            x.clone(),
            y.clone(),
            "loss (per batch)",
        )?;
        let mut keys = Vec::new();
        if w > 1 {
            let raw = RGBColor(160, 190, 220);
            chart
                .draw_series(LineSeries::new(
                    steps.iter().map(|s| (s.step as f64, s.loss)),
                    raw.stroke_width(px(1)),
                ))
                .map_err(plot_err)?;
            keys.push(("loss per batch".to_string(), Key::Line(raw, 2, false)));
        }
        let main = colour(0);
        chart
            .draw_series(LineSeries::new(
                steps.iter().zip(&smooth).map(|(s, &m)| (s.step as f64, m)),
                main.stroke_width(px(2)),
            ))
            .map_err(plot_err)?;
        keys.push((
            match w > 1 {
                true => format!("mean of {w} steps"),
                false => "loss per batch".to_string(),
            },
            Key::Line(main, 2, false),
        ));
        for (k, (name, points)) in parts.iter().enumerate() {
            let c = colour(2 + k);
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    c.stroke_width(px(2)),
                ))
                .map_err(plot_err)?;
            keys.push((format!("part: {name}"), Key::Line(c, 2, false)));
        }
        let refresh = colour(1);
        let inside: Vec<f64> = clusters
            .iter()
            .map(|c| c.step as f64)
            .filter(|s| x.contains(s) || *s == x.end)
            .collect();
        for s in &inside {
            chart
                .draw_series(DashedLineSeries::new(
                    [(*s, y.start), (*s, y.end)],
                    px(6),
                    px(5),
                    refresh.stroke_width(px(2)),
                ))
                .map_err(plot_err)?;
        }
        if !inside.is_empty() {
            keys.push(("clustering run".to_string(), Key::Line(refresh, 2, true)));
        }
        draw_legend(&legend, "", &keys)
    })?;
    Ok(Png {
        name: "loss".into(),
        caption: match clusters.is_empty() {
            true => "Training loss over optimiser steps.".into(),
            false => "Training loss over optimiser steps; dashed lines mark clustering runs \
                      (clusters.jsonl)."
                .into(),
        },
        bytes,
    })
}

/// Per layer of a mixture-of-experts model, the share of tokens its busiest expert took at each
/// step: 1/E is perfectly balanced routing, 1 is every token on one expert.
pub fn expert_load(steps: &[StepRecord]) -> anyhow::Result<Option<Png>> {
    let routed: Vec<&StepRecord> = steps.iter().filter(|s| !s.routing.is_empty()).collect();
    let Some(first) = routed.first() else {
        return Ok(None);
    };
    let layers = first.routing.len();
    let experts = first.routing.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let share = |counts: &[u64]| -> Option<f64> {
        let total: u64 = counts.iter().sum();
        (total > 0).then(|| *counts.iter().max().unwrap() as f64 / total as f64)
    };
    let x = step_range(first.step, routed[routed.len() - 1].step);
    let floor = 1.0 / experts as f64;
    let bytes = render(W, H, |root| {
        let (plot, legend) = with_legend(root);
        let mut chart = frame(
            &plot,
            "Expert load per layer",
            x,
            (floor - 0.02).max(0.0)..1.02,
            "busiest expert's share of tokens",
        )?;
        let mut keys = Vec::new();
        for l in 0..layers {
            let c = colour(l);
            chart
                .draw_series(LineSeries::new(
                    routed
                        .iter()
                        .filter_map(|s| Some((s.step as f64, share(s.routing.get(l)?)?))),
                    c.stroke_width(px(2)),
                ))
                .map_err(plot_err)?;
            keys.push((format!("layer {l}"), Key::Line(c, 2, false)));
        }
        draw_legend(&legend, "", &keys)
    })?;
    Ok(Some(Png {
        name: "expert-load".into(),
        caption: format!(
            "The share of each layer's tokens taken by its busiest expert ({experts} experts; \
             {floor:.2} is balanced, 1 is collapse onto one expert)."
        ),
        bytes,
    }))
}

/// Learning rate per step (warm-up and decay).
pub fn learning_rate(steps: &[StepRecord]) -> anyhow::Result<Png> {
    let hi = steps.iter().map(|s| s.lr).fold(0.0, f64::max);
    let x = step_range(steps[0].step, steps[steps.len() - 1].step);
    let bytes = render(W, H, |root| {
        let (plot, legend) = with_legend(root);
        let mut chart = frame(
            &plot,
            "Learning rate",
            x,
            0.0..hi.max(1e-12) * 1.08,
            "learning rate",
        )?;
        chart
            .draw_series(LineSeries::new(
                steps.iter().map(|s| (s.step as f64, s.lr)),
                colour(0).stroke_width(px(2)),
            ))
            .map_err(plot_err)?;
        draw_legend(
            &legend,
            "",
            &[("AdamW lr".into(), Key::Line(colour(0), 2, false))],
        )
    })?;
    Ok(Png {
        name: "lr".into(),
        caption: "Learning rate over optimiser steps.".into(),
        bytes,
    })
}

/// The dev metric over steps: overall in bold, each language thin.
pub fn dev_metric(dev: &[DevEval], metric: &str) -> anyhow::Result<Png> {
    let langs: Vec<&String> = {
        let mut l: Vec<&String> = dev.iter().flat_map(|d| d.report.per_lang.keys()).collect();
        l.sort();
        l.dedup();
        l
    };
    let values = dev
        .iter()
        .flat_map(|d| {
            d.report
                .overall
                .get(metric)
                .into_iter()
                .chain(d.report.per_lang.values().filter_map(|m| m.get(metric)))
        })
        .collect::<Vec<f64>>();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let x = step_range(dev[0].step, dev[dev.len() - 1].step);
    let bytes = render(W, H + 40, |root| {
        let (plot, legend) = with_legend(root);
        let title = format!("Dev {metric} during training");
        let mut chart = frame(&plot, &title, x, padded(lo, hi), &format!("dev {metric}"))?;
        let mut keys = Vec::new();
        for (i, lang) in langs.iter().enumerate() {
            let c = colour(i + 1);
            let pts: Vec<(f64, f64)> = dev
                .iter()
                .filter_map(|d| Some((d.step as f64, d.report.per_lang.get(*lang)?.get(metric)?)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.mix(0.8).stroke_width(px(1))))
                .map_err(plot_err)?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, px(2), c.filled())))
                .map_err(plot_err)?;
            keys.push((lang.to_string(), Key::Line(c, 2, false)));
        }
        let all: Vec<(f64, f64)> = dev
            .iter()
            .filter_map(|d| Some((d.step as f64, d.report.overall.get(metric)?)))
            .collect();
        chart
            .draw_series(LineSeries::new(all.clone(), BLACK.stroke_width(px(3))))
            .map_err(plot_err)?;
        chart
            .draw_series(all.iter().map(|&p| Circle::new(p, px(4), BLACK.filled())))
            .map_err(plot_err)?;
        keys.insert(0, ("all languages".into(), Key::Line(BLACK, 3, false)));
        draw_legend(&legend, "", &keys)
    })?;
    Ok(Png {
        name: "dev".into(),
        caption: format!("Dev {metric} at each evaluation: all queries (black) and per language."),
        bytes,
    })
}

/// The number of clusters over steps: k holds from one clustering run to the next.
pub fn cluster_k(clusters: &[ClusterRun], last_step: u64) -> anyhow::Result<Png> {
    let runs: Vec<(f64, f64)> = clusters
        .iter()
        .filter_map(|c| Some((c.step as f64, c.k?)))
        .collect();
    let end = (last_step as f64).max(runs.last().map_or(0.0, |r| r.0));
    let mut stairs = Vec::new();
    for (i, &(s, k)) in runs.iter().enumerate() {
        let next = runs.get(i + 1).map_or(end, |r| r.0);
        stairs.push((s, k));
        stairs.push((next, k));
    }
    let hi = runs.iter().map(|r| r.1).fold(0.0, f64::max);
    let x = step_range(runs[0].0 as u64, end as u64);
    let bytes = render(W, H, |root| {
        let (plot, legend) = with_legend(root);
        let mut chart = frame(
            &plot,
            "Number of clusters",
            x,
            0.0..hi * 1.12 + 1.0,
            "clusters k",
        )?;
        chart
            .draw_series(LineSeries::new(stairs, colour(0).stroke_width(px(2))))
            .map_err(plot_err)?;
        chart
            .draw_series(
                runs.iter()
                    .map(|&p| Circle::new(p, px(4), colour(1).filled())),
            )
            .map_err(plot_err)?;
        draw_legend(
            &legend,
            "",
            &[
                ("k in effect".into(), Key::Line(colour(0), 2, false)),
                ("clustering run".into(), Key::Dot(colour(1))),
            ],
        )
    })?;
    Ok(Png {
        name: "clusters-k".into(),
        caption: "Number of clusters k over optimiser steps; dots are clustering runs.".into(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_warms_up_then_slides() {
        assert_eq!(
            moving_average(&[2.0, 4.0, 6.0, 8.0], 2),
            vec![2.0, 3.0, 5.0, 7.0]
        );
        assert_eq!(moving_average(&[1.0], 5), vec![1.0]);
    }
}
