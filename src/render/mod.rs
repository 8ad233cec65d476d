//! Templates (embedded) rendered with one strict minijinja environment.
