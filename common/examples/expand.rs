//! Parses and expands a grid file, and says how long it took: the grid's share of a
//! coordinator's start, without the database. `cargo run --release -p sweep-common --example
//! expand -- GRID [TIMES]`; under `valgrind --tool=callgrind` it counts instructions
//! (BENCHMARKS.md, "Grid expansion").

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: expand GRID [TIMES]")?;
    let times: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let text = std::fs::read_to_string(&path)?;
    for _ in 0..times {
        let started = std::time::Instant::now();
        let grid = sweep_common::grid::Grid::parse(&text, &path)?;
        let first = grid.trials().next().map(|t| t.id.to_string());
        println!(
            "{} trials in {:.3} s (first id {})",
            grid.len(),
            started.elapsed().as_secs_f64(),
            first.unwrap_or_default()
        );
    }
    Ok(())
}
