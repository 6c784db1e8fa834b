//! Reading a component's manifest without a running host, for `sop validate --plugins DIR`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::LoadError;
use crate::host::PluginHost;
use crate::manifest::Manifest;

/// The checked manifest of the component at `path`: the same checks as loading it
/// (component of the `sop:plugin` world, `describe` under default limits with no host
/// access, manifest rules), without keeping anything for calls.
///
/// Cheap enough for a command-line check: the component is compiled without optimisation
/// into a throw-away engine with no instance pool (about a second for the WeCom plugin in a
/// release build). Blocking: it runs on a thread of its own, so it may be called from inside
/// or outside an async runtime.
pub fn describe_file(path: &Path) -> Result<Manifest, LoadError> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: origin.clone(),
        source,
    })?;
    describe_bytes(&origin, &bytes)
}

/// [`describe_file`] for a component already in memory; `origin` names it in errors.
pub fn describe_bytes(origin: &str, bytes: &[u8]) -> Result<Manifest, LoadError> {
    let setup = |e: &dyn std::fmt::Display| LoadError::Compile {
        path: origin.to_owned(),
        message: format!("could not start a wasm engine to describe it: {e}"),
    };
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            // A runtime of its own: `describe` is an async export, and a caller inside a
            // tokio runtime could not block on it there.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| setup(&e))?;
            runtime.block_on(async {
                let host = PluginHost::for_describe().map_err(|e| setup(&format!("{e:#}")))?;
                let plugin = host.load_bytes(origin, bytes, &BTreeMap::new()).await?;
                Ok(plugin.manifest().clone())
            })
        });
        worker
            .join()
            .unwrap_or_else(|_| Err(setup(&"the describe thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_and_non_components_are_clear_errors() {
        let missing = describe_file(Path::new("/nonexistent/plugin.wasm"));
        assert!(matches!(missing, Err(LoadError::Io { .. })), "{missing:?}");
        let garbage = describe_bytes("junk.wasm", b"not wasm at all");
        match garbage {
            Err(LoadError::Compile { path, .. }) => assert_eq!(path, "junk.wasm"),
            other => panic!("expected a compile error, got {other:?}"),
        }
    }
}
