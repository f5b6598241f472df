//! The worker process: `rsfm-worker run --stage stage.json --out DIR`.

use std::process::ExitCode;

use tch::{Device, Kind, Tensor};

/// Entry point of `rsfm-worker`.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("selftest") => {
            let x = Tensor::arange(6, (Kind::Float, Device::Cpu)).reshape([2, 3]);
            let y = x.matmul(&x.transpose(0, 1));
            println!("selftest ok: libtorch forward pass gives {:?}", Vec::<f32>::try_from(y.flatten(0, -1)).unwrap());
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: rsfm-worker run --stage stage.json --out DIR");
            ExitCode::from(2)
        }
    }
}
