//! Score distributions of mined negatives: the ones kept against the ones the false-negative
//! filter dropped, per source, to see where the margin cut.

use plotters::prelude::*;

use super::{colour, draw_legend, font, plot_err, px, render, tick, tint, with_legend, Key, Png};
use polydense_mine::Histogram;

/// Share of the histogram's values in each bin, in percent.
fn shares(h: &Histogram) -> Vec<f64> {
    let n = h.count.max(1) as f64;
    h.counts.iter().map(|&c| 100.0 * c as f64 / n).collect()
}

/// Thousands separated by commas, for counts in legends.
fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Kept and (when the stats have them) dropped negatives' scores of one source, each as the
/// share of its own set per bin, so sets of very different sizes compare by shape.
pub fn negative_scores(
    source: &str,
    kept: &Histogram,
    dropped: Option<&Histogram>,
) -> anyhow::Result<Png> {
    let sets: Vec<(&Histogram, String, RGBColor)> =
        std::iter::once((kept, format!("kept (n={})", count(kept.count)), colour(0)))
            .chain(dropped.map(|d| (d, format!("dropped (n={})", count(d.count)), colour(2))))
            .collect();
    let lo = sets
        .iter()
        .map(|s| s.0.min as f64)
        .fold(f64::INFINITY, f64::min);
    let mut hi = sets
        .iter()
        .map(|s| s.0.max as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let top = sets
        .iter()
        .flat_map(|s| shares(s.0))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let bytes = render(1000, 460, |root| {
        let (plot, legend) = with_legend(root);
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("Scores of mined negatives ({source})"), font(20))
            .margin(px(12))
            .x_label_area_size(px(48))
            .y_label_area_size(px(70))
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(format!("{source} score"))
            .y_desc("share of the set per bin (%)")
            .axis_desc_style(font(15))
            .label_style(font(13))
            .x_labels(10)
            .y_labels(6)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215).stroke_width(px(1)))
            .axis_style(BLACK.stroke_width(px(1)))
            .draw()
            .map_err(plot_err)?;
        let mut keys = Vec::new();
        for (h, label, c) in &sets {
            let bars = h.edges.windows(2).zip(shares(h)).map(|(e, s)| {
                Rectangle::new([(e[0] as f64, 0.0), (e[1] as f64, s)], c.mix(0.45).filled())
            });
            chart.draw_series(bars).map_err(plot_err)?;
            // Outlines keep each set's shape readable where the two overlap.
            let outline = h.edges.windows(2).zip(shares(h)).map(|(e, s)| {
                Rectangle::new(
                    [(e[0] as f64, 0.0), (e[1] as f64, s)],
                    c.stroke_width(px(1)),
                )
            });
            chart.draw_series(outline).map_err(plot_err)?;
            keys.push((label.clone(), Key::Box(tint(*c, 0.45))));
        }
        draw_legend(&legend, "negatives", &keys)
    })?;
    Ok(Png {
        name: format!("negatives-{}", file_safe(source)),
        caption: match dropped {
            Some(_) => format!(
                "Scores {source} gave the negatives it proposed: the ones kept in the training \
                 file against the ones the false-negative filter dropped."
            ),
            None => format!(
                "Scores {source} gave the negatives kept in the training file (the stats hold \
                 no dropped scores: no false-negative filter ran, or they predate it)."
            ),
        },
        bytes,
    })
}

/// A source name as a file name part.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '_',
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(7), "7");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(907995), "907,995");
    }
}
