//! The `ews` connector's parse + map bench inside WebAssembly (a bench binary, not a timed
//! test): `plugins/ews/src/bin/parse_bench.rs` built as a `wasm32-wasip2` command component, run
//! under wasmtime with an engine configured as the runtime's (`crates/runtime/src/engine.rs`,
//! `base_config`: component model, epoch interruption, copy-on-write memory images, 1 MiB wasm
//! stack; Cranelift at its default `OptLevel::Speed`). It prints the bench's own table (items/s
//! per response, measured inside wasm with WASI's monotonic clock).
//!
//! ```sh
//! cargo build --profile plugin --target wasm32-wasip2 -p ews --features bench --bin parse_bench
//! cargo test -p syncbridge --features ews-wasm-bench --bench ews_parse_wasm [-- <items>]
//! ```
//!
//! (`cargo bench` instead of `cargo test` runs it too, after building the host in release mode;
//! the timed code is Cranelift's either way.)
//!
//! `EWS_PARSE_WASM` names another component file; with `EWS_PARSE_PERFMAP` set, wasmtime writes
//! a perf map of the compiled functions (for `perf record`; build the component with
//! `--release` instead of `--profile plugin` to keep their names).

use std::path::PathBuf;
use std::time::Instant;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable, ResourceType};
use wasmtime::{Config, Engine, OptLevel, ProfilingStrategy, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// The component also carries the connector's exports (the `ews` library links them in), and
/// with them its imports of the host's `syncbridge:plugin` interfaces, which the bench never
/// calls: their functions are defined as traps. (Not with `define_unknown_imports_as_traps`: it
/// would also define the WASI 0.2.6 interfaces the component imports, as traps, where the linker
/// otherwise answers them with wasmtime-wasi's 0.2.12 ones, semver-compatible.)
fn stub_host_interfaces(
    linker: &mut Linker<State>,
    engine: &Engine,
    component: &Component,
) -> wasmtime::Result<()> {
    let ty = component.component_type();
    for (name, import) in ty.imports(engine) {
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            continue;
        };
        if !name.starts_with("syncbridge:plugin/") {
            continue;
        }
        let mut stubs = linker.instance(name)?;
        for (item, export) in instance.exports(engine) {
            match export.ty {
                ComponentItem::ComponentFunc(_) => {
                    let what = format!("{name}#{item}");
                    stubs.func_new(item, move |_, _, _, _| {
                        Err(wasmtime::Error::msg(format!("the bench called {what}")))
                    })?;
                }
                ComponentItem::Resource(_) => {
                    stubs.resource(item, ResourceType::host::<()>(), |_, _| Ok(()))?
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn main() -> wasmtime::Result<()> {
    let path = std::env::var_os("EWS_PARSE_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("wasm32-wasip2/plugin/parse_bench.wasm")
        });
    if !path.exists() {
        eprintln!(
            "{} is missing; build it first:\n  cargo build --profile plugin --target wasm32-wasip2 -p ews --features bench --bin parse_bench",
            path.display()
        );
        std::process::exit(2);
    }
    // `cargo bench` adds `--bench`; the rest goes to the component (the number of items).
    let mut args = vec!["parse_bench".to_owned()];
    args.extend(std::env::args().skip(1).filter(|a| !a.starts_with("--")));

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .max_wasm_stack(1 << 20)
        .cranelift_opt_level(OptLevel::Speed);
    if std::env::var_os("EWS_PARSE_PERFMAP").is_some() {
        // For `perf record`: names the compiled wasm functions in /tmp/perf-PID.map.
        config.profiler(ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&config)?;
    let started = Instant::now();
    let component = Component::from_file(&engine, &path)?;
    println!(
        "{} ({} bytes) compiled in {:.2} s; wasmtime 48, Cranelift OptLevel::Speed, epoch interruption on",
        path.display(),
        std::fs::metadata(&path)?.len(),
        started.elapsed().as_secs_f64()
    );

    let mut linker = Linker::<State>::new(&engine);
    // WASI 0.2 as wasmtime-wasi 48 has it (0.2.12); the component's 0.2.6 imports link to it
    // (semver-compatible).
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    stub_host_interfaces(&mut linker, &engine, &component)?;
    let mut store = Store::new(
        &engine,
        State {
            ctx: WasiCtx::builder()
                .inherit_stdout()
                .inherit_stderr()
                .args(&args)
                .build(),
            table: ResourceTable::new(),
        },
    );
    // The epoch never advances here: no deadline is reached, the checks are paid as in the runtime.
    store.set_epoch_deadline(u64::MAX);
    let command = Command::instantiate(&mut store, &component, &linker)?;
    match command.wasi_cli_run().call_run(&mut store)? {
        Ok(()) => Ok(()),
        Err(()) => Err(wasmtime::Error::msg("the bench component failed")),
    }
}
