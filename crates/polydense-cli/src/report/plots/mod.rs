//! The report's charts, drawn with plotters into memory and encoded as PNG. Each chart keeps
//! its legend in a panel of its own beside the plotting area, so it never hides data.

mod bars;
mod curves;
mod dims;
mod histogram;
mod scatter;

pub use bars::system_bars;
pub use curves::{cluster_k, dev_metric, expert_load, learning_rate, training_loss};
pub use dims::quality_by_dim;
pub use histogram::negative_scores;
pub use scatter::{projection_by_cluster, projection_by_lang};

use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A rendered chart.
pub struct Png {
    /// File stem under RUN_DIR/plots/.
    pub name: String,
    /// What it shows, for the alt text and the caption.
    pub caption: String,
    /// The PNG file's bytes.
    pub bytes: Vec<u8>,
}

/// Environment variable naming a TTF file to draw text with, for systems without DejaVu.
pub const FONT_ENV: &str = "POLYDENSE_FONT";

/// Where Linux distributions put DejaVu Sans (Debian/Ubuntu, Fedora, Arch, openSUSE).
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/DejaVuSans.ttf",
];

/// The font family the charts name; the registered file answers to it.
const FAMILY: &str = "sans-serif";

/// Registers the system font with plotters once per process. plotters' ab_glyph backend
/// holds fonts for the life of the program, so the bytes are leaked on purpose (once).
pub fn register_font() -> anyhow::Result<()> {
    static DONE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        let mut tried: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os(FONT_ENV) {
            tried.push(p.into());
        }
        tried.extend(FONT_PATHS.iter().map(PathBuf::from));
        let Some(path) = tried.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "no font to draw the plots' text with: looked for {}; install the \
                 fonts-dejavu-core package (Debian/Ubuntu; dejavu-sans-fonts on Fedora) or \
                 set {FONT_ENV} to a .ttf file",
                tried
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
            .map_err(|_| format!("{}: not a TrueType/OpenType font", path.display()))?;
        Ok(path.clone())
    });
    r.as_ref().map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Charts are drawn at this multiple of their size, then averaged down: lines and text come
/// out anti-aliased, and plotters' ab_glyph text (which drops each glyph's left side bearing
/// and rounds its advance to whole pixels, so "cl" can read as "d") errs by half as much.
const SUPERSAMPLE: u32 = 2;

/// A length in chart pixels as drawn (before averaging down).
fn px<T: From<u8> + std::ops::Mul<Output = T>>(v: T) -> T {
    v * T::from(SUPERSAMPLE as u8)
}

/// Text style of the given size (in output pixels) in the registered font.
fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, px(size)).into_font().color(&BLACK)
}

/// Averages each `f`×`f` block of an RGB image of `w`×`h` output pixels.
fn downsample(rgb: &[u8], w: u32, h: u32, f: u32) -> Vec<u8> {
    let (w, h, f) = (w as usize, h as usize, f as usize);
    let big_w = w * f;
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let mut sum = 0u32;
                for dy in 0..f {
                    for dx in 0..f {
                        sum += rgb[((y * f + dy) * big_w + x * f + dx) * 3 + c] as u32;
                    }
                }
                out[(y * w + x) * 3 + c] = ((sum + (f * f / 2) as u32) / (f * f) as u32) as u8;
            }
        }
    }
    out
}

/// Draws a chart of `w`×`h` output pixels with `draw` and encodes it as PNG.
fn render(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<u8>> {
    register_font()?;
    let mut big = vec![255u8; (px(w) * px(h) * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut big, (px(w), px(h))).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    let rgb = downsample(&big, w, h, SUPERSAMPLE);
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Best);
    let mut writer = enc.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

/// plotters' errors borrow the backend's error type; the report only needs their text.
fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot: {e}")
}

/// Categorical colours, distinct for up to 12 series (Tableau 10 plus two): languages,
/// systems.
const PALETTE: [RGBColor; 12] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0x79, 0x70, 0x6e),
    RGBColor(0x1f, 0x3a, 0x93),
    RGBColor(0x8c, 0xd1, 0x7d),
];

/// The colour of series `i`; beyond the palette, hues spaced by the golden angle stay
/// apart for any number of clusters.
fn colour(i: usize) -> RGBColor {
    if i < PALETTE.len() {
        return PALETTE[i];
    }
    let h = (i as f64 * 0.618_033_988_75).fract();
    let (r, g, b) = HSLColor(h, 0.65, 0.45).rgb();
    RGBColor(r, g, b)
}

/// `c` drawn at opacity `a` over white: the legend key of a translucent series.
fn tint(c: RGBColor, a: f64) -> RGBColor {
    let f = |v: u8| (255.0 * (1.0 - a) + v as f64 * a).round() as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

/// How a legend entry draws its key.
#[derive(Clone, Copy)]
enum Key {
    /// A line, optionally dashed.
    Line(RGBColor, u32, bool),
    /// A filled box (bars, histogram).
    Box(RGBColor),
    /// A dot (scatter).
    Dot(RGBColor),
}

/// Width of the legend panel at the right of a chart.
const LEGEND_W: u32 = 190;

/// Splits a chart area into the plotting part and a legend panel at its right.
fn with_legend<'b>(
    root: &DrawingArea<BitMapBackend<'b>, Shift>,
) -> (
    DrawingArea<BitMapBackend<'b>, Shift>,
    DrawingArea<BitMapBackend<'b>, Shift>,
) {
    let w = root.dim_in_pixel().0;
    root.split_horizontally(w.saturating_sub(px(LEGEND_W)))
}

/// Draws the legend entries top-down in `area`, starting level with the plot's top; long
/// labels are cut to the panel's width.
fn draw_legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    entries: &[(String, Key)],
) -> anyhow::Result<()> {
    let mut y = px(52);
    let x = px(8);
    if !title.is_empty() {
        area.draw(&Text::new(title.to_string(), (x, y), font(15)))
            .map_err(plot_err)?;
        y += px(24);
    }
    let max_chars = 20;
    for (label, key) in entries {
        let cy = y + px(8);
        match *key {
            Key::Line(c, width, dashed) => {
                let style = c.stroke_width(px(width));
                if dashed {
                    for s in [0, 10, 20] {
                        let (a, b) = (x + px(s), x + px(s + 6));
                        area.draw(&PathElement::new(vec![(a, cy), (b, cy)], style))
                            .map_err(plot_err)?;
                    }
                } else {
                    area.draw(&PathElement::new(vec![(x, cy), (x + px(26), cy)], style))
                        .map_err(plot_err)?;
                }
            }
            Key::Box(c) => {
                let corners = [(x + px(3), cy - px(7)), (x + px(23), cy + px(7))];
                area.draw(&Rectangle::new(corners, c.filled()))
                    .map_err(plot_err)?;
            }
            Key::Dot(c) => {
                area.draw(&Circle::new((x + px(13), cy), px(5), c.filled()))
                    .map_err(plot_err)?;
            }
        }
        let text: String = match label.chars().count() > max_chars {
            true => label.chars().take(max_chars - 1).chain(['…']).collect(),
            false => label.clone(),
        };
        let style = font(14).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(text, (x + px(34), cy), style))
            .map_err(plot_err)?;
        y += px(22);
    }
    Ok(())
}

/// Padded range around the values, so lines do not run along the frame.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
    (lo - 0.05 * span)..(hi + 0.05 * span)
}

/// A number for an axis tick: plain when readable, scientific when tiny or huge.
fn tick(v: f64) -> String {
    let a = v.abs();
    // Below 1e-12 is rounding noise of a tick meant to be zero (e.g. -5.6e-17).
    if a < 1e-12 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(-5.6e-17), "0");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(1500.0), "1500");
        assert_eq!(tick(2e-5), "2.0e-5");
        assert_eq!(tick(3.0), "3");
    }

    #[test]
    fn downsampling_averages_blocks() {
        // 2×1 output from a 4×2 image: left block all 0 and 255 mixed, right block all 100.
        let mut big = vec![100u8; 4 * 2 * 3];
        for (i, v) in [0u8, 255, 0, 255].iter().enumerate() {
            let (x, y) = (i % 2, i / 2);
            big[(y * 4 + x) * 3..(y * 4 + x) * 3 + 3].fill(*v);
        }
        assert_eq!(
            downsample(&big, 2, 1, 2),
            vec![128, 128, 128, 100, 100, 100]
        );
    }

    #[test]
    fn colours_stay_distinct_past_the_palette() {
        let cs: Vec<RGBColor> = (0..40).map(colour).collect();
        for i in 0..cs.len() {
            for j in 0..i {
                assert_ne!(cs[i], cs[j], "{i} and {j}");
            }
        }
    }

    #[test]
    fn a_rendered_chart_is_a_png() {
        if let Err(e) = register_font() {
            assert!(!polydense_data::paths::assets_required(), "{e}");
            eprintln!("skip: {e}");
            return;
        }
        let png = render(120, 80, |root| {
            root.draw(&Text::new("x", (10, 10), font(12)))
                .map_err(plot_err)
        })
        .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
