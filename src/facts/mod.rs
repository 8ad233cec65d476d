//! Reading the host: containers, images, files and their hashes, state.
