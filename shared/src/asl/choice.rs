//! Choice rule evaluation (JSONPath comparison operators and JSONata conditions).
