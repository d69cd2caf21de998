//! Facts from SQL text. `facts` is the contract with the engine; `extract` drives the rest:
//! `lexing` (tokens, `U&` names, statement boundaries), `limits` (size and nesting bounds),
//! `classify` (statement classes, verbs, object kinds, keyword fallback), `relations` (the
//! syntax-tree walk), `constant_fold` (constant-true conditions) and `names` (identifier
//! normalisation).
mod classify;
mod constant_fold;
mod extract;
pub mod facts;
mod lexing;
mod limits;
mod names;
mod relations;

pub use constant_fold::is_constant_true;
pub use extract::{extract, extract_bytes};
pub use facts::*;
pub use limits::SqlLimits;

#[cfg(test)]
mod tests;
