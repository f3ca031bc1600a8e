package collector

// Helpers of the internal tests that the cluster tests (package collector_test)
// use too.
var (
	ParseProm = parseProm
	PromValue = promValue
)
