//! `sop validate`: check playbooks and report every problem at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sop_dsl::catalog::PluginSpec;
use sop_dsl::render::{JsonDiagnostic, render_human};
use sop_dsl::{Catalog, Diagnostic, Severity};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Playbook files (YAML), or directories whose `*.yaml` / `*.yml` files are checked.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Directory of plugins to check actions and events against: manifests (`*.json`) and
    /// compiled plugin components (`*.wasm`, described without running anything else).
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// How to print diagnostics (always on stderr).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// A file that was read, with what the checker said about it.
pub struct Checked {
    pub name: String,
    pub src: String,
    pub loaded: sop_dsl::Loaded,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads the catalog named by `--plugins`, if any: every `*.json` manifest in the directory and
/// the manifest every `*.wasm` plugin component there describes.
pub fn catalog(dir: Option<&PathBuf>) -> Result<Option<Catalog>, String> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let mut catalog = Catalog::load_dir(dir).map_err(|e| e.to_string())?;
    for path in components(dir)? {
        let spec = describe_component(&path)?;
        catalog.insert(spec).map_err(|name| {
            format!(
                "{}: plugin `{name}` is already defined by another manifest or component in {}",
                path.display(),
                dir.display()
            )
        })?;
    }
    Ok(Some(catalog))
}

/// The `*.wasm` files in `dir` (not recursive), in name order.
fn components(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "wasm") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// The manifest of the plugin component at `path`, with the host's load-time checks (a
/// component of the `sop:plugin` world whose `describe` answers a valid manifest).
fn describe_component(path: &Path) -> Result<PluginSpec, String> {
    // The host's errors already name the file.
    let manifest = sop_plugin_host::describe_file(path).map_err(|e| e.to_string())?;
    // Both are the WIT `manifest` record in snake_case with the schemas parsed, so the
    // checker's form is a re-reading of the host's.
    serde_json::to_value(&manifest)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            format!(
                "{}: the plugin's manifest does not fit the checker's catalog: {e}",
                path.display()
            )
        })
}

/// Reads and checks one file; an unreadable file becomes a diagnostic-free error string.
pub fn check_file(path: &PathBuf, catalog: Option<&Catalog>) -> Result<Checked, String> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let src = String::from_utf8(bytes).map_err(|e| format!("{name}: not UTF-8 text: {e}"))?;
    let loaded = sop_dsl::load(&src, catalog);
    let diagnostics = loaded.diagnostics.clone();
    Ok(Checked {
        name,
        src,
        loaded,
        diagnostics,
    })
}

/// Files as given, with each directory replaced by its YAML files in name order.
fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        let Ok(entries) = std::fs::read_dir(path) else {
            files.push(path.clone());
            continue;
        };
        let mut yaml: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        yaml.sort();
        files.extend(yaml);
    }
    files
}

pub fn run(args: Args) -> ExitCode {
    let catalog = match catalog(args.plugins.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = expand(&args.files);
    let mut failed = false;
    let mut counts = [0usize; 3];
    let mut json = Vec::new();
    for path in &files {
        let checked = match check_file(path, catalog.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                failed = true;
                counts[2] += 1;
                if args.format == Format::Json {
                    json.push(serde_json::json!({"file": path.display().to_string(), "severity": "error", "message": e}));
                } else {
                    eprintln!("error: {e}");
                }
                continue;
            }
        };
        for d in &checked.diagnostics {
            counts[d.severity as usize] += 1;
            failed |= d.is_error();
            match args.format {
                Format::Human => eprintln!("{}", render_human(d, &checked.name, &checked.src)),
                Format::Json => json.push(
                    serde_json::to_value(JsonDiagnostic::new(d, &checked.name, &checked.src))
                        .unwrap_or_default(),
                ),
            }
        }
    }
    match args.format {
        Format::Json => eprintln!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_else(|_| "[]".into())
        ),
        Format::Human => eprintln!(
            "{} file(s) checked: {} error(s), {} warning(s), {} note(s)",
            files.len(),
            counts[Severity::Error as usize],
            counts[Severity::Warning as usize],
            counts[Severity::Note as usize]
        ),
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
