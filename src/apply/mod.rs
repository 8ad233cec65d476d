//! Walks a plan step by step against a host, stopping at the first failure and naming the step.
