//! The pure planner: desired state and host facts in, a `Plan` of steps out; and its printers.
