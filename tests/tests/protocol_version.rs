//! The protocol version, with the real coordinator: a worker of protocol v1 (whose trials
//! carried their hyperparameters as fields) is refused when it registers, before it can lease
//! a trial it would fail to decode; a v2 worker leases a trial whose hyperparameters come by key,
//! one entry per hyperparameter its id names, and decode to the grid's trial.

use sweep_common::grid::{Grid, Param};
use sweep_proto::v1;
use sweep_tests::{Sweep, faults};
use tonic::Code;

#[test]
fn an_older_worker_is_refused_and_trials_carry_their_hyperparameters_by_key() {
    let text = faults::grid("protocol", 2, 1, 0);
    let sweep = Sweep::new(&text);
    let grid = Grid::parse(&text, "grid.toml").expect("a valid grid");
    let c = sweep.start_coordinator_at("127.0.0.1:0", &["--linger", "1s"]);
    let url = c.url();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url)
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut client = sweep_proto::auth::client(channel.clone(), sweep_proto::Bearer::none());
        let register = |version: v1::ProtocolVersion| v1::RegisterRequest {
            protocol_version: version.into(),
            worker_name: "w".to_owned(),
            device: None,
            slots: 1,
        };

        let old = client
            .register(register(v1::ProtocolVersion::V1))
            .await
            .expect_err("a v1 worker is refused");
        assert_eq!(old.code(), Code::InvalidArgument, "{old:?}");
        assert!(
            old.message().contains(
                "unsupported protocol version 1; this coordinator speaks sweep.v1 version 2"
            ),
            "{}",
            old.message()
        );

        let r = client
            .register(register(v1::ProtocolVersion::V2))
            .await
            .expect("a v2 worker registers")
            .into_inner();
        let mut worker = sweep_proto::auth::client(
            channel,
            sweep_proto::Bearer::none()
                .with_worker_secret(&r.worker_secret)
                .expect("a header value"),
        );
        let leased = worker
            .lease(v1::LeaseRequest {
                worker_id: r.worker_id,
            })
            .await
            .expect("lease")
            .into_inner();
        let Some(v1::lease_response::Outcome::Assignment(a)) = leased.outcome else {
            panic!("no assignment: {leased:?}");
        };
        let wire = a.trial.expect("a trial");
        let spec = sweep_common::TrialSpec::try_from(&wire).expect("the trial decodes");
        let keys: Vec<&str> = wire.params.iter().map(|p| p.key.as_str()).collect();
        let named: Vec<&str> = spec.params.named().map(|(p, _)| p.key()).collect();
        assert_eq!(keys, named);
        assert_eq!(keys[..8], Param::KEYS[..8]);
        assert!(
            grid.trials().any(|t| *t == spec),
            "{spec:?} is not a trial of the grid"
        );
    });
}
