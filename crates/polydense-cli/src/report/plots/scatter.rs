//! The 2-d projection of the training embeddings, coloured by cluster and by language: do
//! the clusters follow topics across languages, or split by language?

use plotters::prelude::*;

use super::{colour, draw_legend, font, padded, plot_err, px, render, tick, with_legend, Key, Png};
use crate::report::inputs::{ProjPoint, Projection};

const W: u32 = 760;
const H: u32 = 600;

/// Scatter of the points coloured by `class`; with `legend` the classes are listed.
fn scatter(
    p: &Projection,
    title: &str,
    class: impl Fn(usize) -> usize,
    legend: Option<(&str, Vec<String>)>,
) -> anyhow::Result<Vec<u8>> {
    let fold = |f: fn(&ProjPoint) -> f64| {
        p.points
            .iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (x0, x1) = fold(|q| q.x);
    let (y0, y1) = fold(|q| q.y);
    // Small points for big projections, so dense regions still show their mix.
    let radius = match p.points.len() {
        0..=800 => 4,
        801..=3000 => 3,
        _ => 2,
    };
    render(W, H, |root| {
        let (plot, panel) = match legend {
            Some(_) => {
                let (a, b) = with_legend(root);
                (a, Some(b))
            }
            None => (root.clone(), None),
        };
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, font(19))
            .margin(px(12))
            .x_label_area_size(px(44))
            .y_label_area_size(px(64))
            .build_cartesian_2d(padded(x0, x1), padded(y0, y1))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("projection axis 1 (arbitrary units)")
            .y_desc("projection axis 2 (arbitrary units)")
            .axis_desc_style(font(14))
            .label_style(font(12))
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(220, 220, 220).stroke_width(px(1)))
            .axis_style(BLACK.stroke_width(px(1)))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(p.points.iter().enumerate().map(|(i, q)| {
                Circle::new((q.x, q.y), px(radius), colour(class(i)).mix(0.7).filled())
            }))
            .map_err(plot_err)?;
        if let (Some(panel), Some((title, names))) = (panel, &legend) {
            let keys: Vec<(String, Key)> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), Key::Dot(colour(i))))
                .collect();
            draw_legend(&panel, title, &keys)?;
        }
        Ok(())
    })
}

/// The projection coloured by cluster id (no legend: k may run into the hundreds).
pub fn projection_by_cluster(p: &Projection) -> anyhow::Result<Png> {
    let k =
        p.k.unwrap_or_else(|| p.points.iter().map(|q| q.cluster + 1).max().unwrap_or(0));
    let bytes = scatter(
        p,
        &format!("Embeddings by cluster (k = {k})"),
        |i| p.points[i].cluster as usize,
        None,
    )?;
    Ok(Png {
        name: "projection-clusters".into(),
        caption: format!(
            "{} training embeddings projected to 2-d{}, coloured by cluster.",
            p.points.len(),
            p.step.map(|s| format!(" at step {s}")).unwrap_or_default()
        ),
        bytes,
    })
}

/// The projection coloured by language, with the language codes in the legend.
pub fn projection_by_lang(p: &Projection) -> anyhow::Result<Png> {
    let mut langs: Vec<String> = p.points.iter().map(|q| q.lang.clone()).collect();
    langs.sort();
    langs.dedup();
    let index = |l: &str| langs.binary_search_by(|x| x.as_str().cmp(l)).unwrap_or(0);
    let names: Vec<String> = langs
        .iter()
        .map(|l| match l.is_empty() {
            true => "unknown".to_string(),
            false => l.clone(),
        })
        .collect();
    let bytes = scatter(
        p,
        "Embeddings by language",
        |i| index(&p.points[i].lang),
        Some(("language", names)),
    )?;
    Ok(Png {
        name: "projection-langs".into(),
        caption: format!(
            "The same {} embeddings coloured by query language.",
            p.points.len()
        ),
        bytes,
    })
}
