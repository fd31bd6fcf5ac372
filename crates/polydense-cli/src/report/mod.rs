//! `report.html` of a run directory: training curves, clustering, the embedding projection,
//! the test-set comparison of systems and the mined negatives' scores, with every plot
//! embedded so the page stands alone.

mod environment;
mod html;
mod inputs;
mod plots;
mod sections;

use std::path::{Path, PathBuf};

pub use inputs::RunInputs;

/// Reads RUN_DIR, writes each plot to RUN_DIR/plots/*.png and the page to RUN_DIR/report.html
/// (all atomically), and returns the page's path. `polydense report` and the last stage of
/// `polydense demo` both call it.
pub fn write_report(run_dir: &Path) -> anyhow::Result<PathBuf> {
    let inputs = RunInputs::read(run_dir)?;
    let name = run_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| run_dir.display().to_string());
    let mut page = html::Page::new(&format!("polydense run: {name}"));
    let mut pngs = Vec::new();
    sections::summary(&mut page, &inputs);
    sections::training(&mut page, &inputs, &mut pngs)?;
    sections::clustering(&mut page, &inputs, &mut pngs)?;
    sections::adversarial(&mut page, &inputs);
    sections::projection(&mut page, &inputs, &mut pngs)?;
    sections::test(&mut page, &inputs, &mut pngs)?;
    sections::dims(&mut page, &inputs, &mut pngs)?;
    sections::negatives(&mut page, &inputs, &mut pngs)?;
    sections::config(&mut page, &inputs);
    sections::environment(&mut page);
    let plots_dir = run_dir.join("plots");
    for png in &pngs {
        polydense_data::atomic::write_atomic(plots_dir.join(format!("{}.png", png.name)), |f| {
            std::io::Write::write_all(f, &png.bytes)
        })?;
    }
    let images = page.images();
    let html = page.finish(&format!(
        "Report of {} with {images} plots, made by polydense {}.",
        run_dir.display(),
        env!("CARGO_PKG_VERSION")
    ));
    let path = run_dir.join("report.html");
    polydense_data::atomic::write_atomic(&path, |f| std::io::Write::write_all(f, html.as_bytes()))?;
    Ok(path)
}
