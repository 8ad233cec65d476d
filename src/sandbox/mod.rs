//! A disposable local test host: a container running sshd and its own Docker engine.
