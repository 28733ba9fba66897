//! Everything a running host serves from: the route table and the compiled functions.

use std::sync::Arc;

use crate::{
    config::{Diagnostic, Diagnostics, Project, Settings, Trigger},
    runtime::FunctionRuntime,
};

use super::router::Router;

/// A project compiled and ready to serve.
pub struct App {
    /// Host settings.
    pub settings: Settings,
    /// HTTP routes.
    pub router: Router,
    /// Runs the functions.
    pub runtime: FunctionRuntime,
}

impl App {
    /// Compiles every function of `project`, or lists every problem (a component that is
    /// missing, invalid or of the wrong world), located at the function's `source` field.
    pub fn build(project: &Project) -> Result<App, Diagnostics> {
        let settings = project.settings.clone();
        let max_memory = project
            .functions
            .iter()
            .map(|f| f.memory)
            .max()
            .unwrap_or(0);
        let runtime = FunctionRuntime::new(
            settings.http.max_concurrent_invocations,
            max_memory.max(1 << 20),
        )
        .map_err(|e| Diagnostics(vec![Diagnostic::file(&project.dir, format!("{e:#}"))]))?;
        let mut router = Router::default();
        let mut problems = Diagnostics::default();
        for spec in &project.functions {
            let Trigger::Http { method, paths } = &spec.trigger else {
                continue;
            };
            if !spec.source.is_file() {
                continue; // already reported by the project's own checks
            }
            match runtime.load_http(spec) {
                Ok(function) => {
                    let function = Arc::new(function);
                    for path in paths {
                        router.add(method.clone(), path, function.clone());
                    }
                }
                Err(e) => problems.push(Diagnostic::field(
                    &spec.file,
                    spec.source_location,
                    "source",
                    e.to_string(),
                )),
            }
        }
        problems.into_result(App {
            settings,
            router,
            runtime,
        })
    }
}
