//! Docker through bollard: networks, volumes, containers, image build and transfer, exec, logs.
