# Sourced by the bench scripts from the repository root: sets POLYDENSE to the binary to
# measure, building the release one when the caller did not name one.
if [ -z "${POLYDENSE:-}" ]; then
  cargo build --release -p polydense-cli
  POLYDENSE=${CARGO_TARGET_DIR:-target}/release/polydense
fi
