//! Which function serves a request: exact path, then method.

use std::{collections::HashMap, sync::Arc};

use http::Method;

use crate::runtime::HttpFunction;

/// The route table: path -> (method -> function).
#[derive(Default)]
pub struct Router {
    routes: HashMap<String, Vec<(Method, Arc<HttpFunction>)>>,
}

/// Where a request goes.
pub enum Route<'a> {
    /// To this function.
    Function(&'a Arc<HttpFunction>),
    /// The path exists but not with this method; the value lists the methods it has.
    MethodNotAllowed(String),
    /// No function has this path.
    NotFound,
}

impl Router {
    /// Adds `function` on `method path`. Duplicates were rejected when the project loaded.
    pub fn add(&mut self, method: Method, path: &str, function: Arc<HttpFunction>) {
        self.routes.entry(path.to_string()).or_default().push((method, function));
    }

    /// Finds the route for `method path`.
    pub fn route(&self, method: &Method, path: &str) -> Route<'_> {
        let Some(methods) = self.routes.get(path) else {
            return Route::NotFound;
        };
        match methods.iter().find(|(m, _)| m == method) {
            Some((_, f)) => Route::Function(f),
            None => {
                let mut allow: Vec<&str> = methods.iter().map(|(m, _)| m.as_str()).collect();
                allow.sort_unstable();
                Route::MethodNotAllowed(allow.join(", "))
            }
        }
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.routes.values().map(Vec::len).sum()
    }

    /// Whether there is no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}
