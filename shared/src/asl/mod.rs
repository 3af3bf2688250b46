//! Amazon States Language: definition model, parsing and validation, JSONPath (Jayway-style),
//! payload templates, intrinsic functions, JSONata, Choice rules.

pub mod choice;
pub mod diagnostic;
pub mod error;
pub mod intrinsics;
pub mod jsonata;
pub mod jsonpath;
pub mod model;
pub mod parse;
pub mod scope;
pub mod template;
pub mod timestamp;

pub use diagnostic::Diagnostic;
pub use error::{AslError, ErrorName};
pub use model::*;
