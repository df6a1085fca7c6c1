//! Runs a `wasm32-wasip2` command component (a bench built for wasm) on an engine configured
//! as the runtime's (component model, epoch interruption), with inherited stdio and the given
//! arguments; nothing else is granted (other imports trap).
//!
//! `cargo run --release -p syncbridge-runtime --example wasi_run -- <component.wasm> [args…]`

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn main() -> wasmtime::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        wasmtime::bail!("usage: wasi_run <component.wasm> [args…]");
    };
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(1 << 20);
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, path)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    // A bench linked with a plugin library imports the plugin world's host interfaces too;
    // it never calls them, so they trap if it did.
    linker.define_unknown_imports_as_traps(&component)?;
    let wasi = WasiCtxBuilder::new().inherit_stdio().args(&args).build();
    let mut store = Store::new(
        &engine,
        State {
            wasi,
            table: ResourceTable::new(),
        },
    );
    // The epoch never advances here: the check runs as in the runtime, and never fires.
    store.set_epoch_deadline(1);
    let command = Command::instantiate(&mut store, &component, &linker)?;
    command
        .wasi_cli_run()
        .call_run(&mut store)?
        .map_err(|()| wasmtime::format_err!("{path} exited with an error"))
}
