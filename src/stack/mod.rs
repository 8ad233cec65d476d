//! The stack.yaml model: parsing, `${VAR}` interpolation, secrets, validation with file:line:col diagnostics.
