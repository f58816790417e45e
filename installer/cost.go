package installer

// Cost is what the machines a cluster file asks for cost per hour, at the pools' min (an
// idle cluster) and at their max (what the autoscaler may reach). `plan` prints it before
// any phase, as a "cost" event; `install` checks it against --max-hourly-cost before it
// changes anything. The engine only carries it: the pricing package works it out.
type Cost struct {
	// Currency of every amount (USD).
	Currency string `json:"currency"`
	// Region whose prices are shown.
	Region string `json:"region"`
	// Lines are the control plane, the workers, then each GPU pool.
	Lines []CostLine `json:"lines"`
	// MinHourly and MaxHourly are the totals of the lines.
	MinHourly float64 `json:"minHourly"`
	MaxHourly float64 `json:"maxHourly"`
	// Source says where the on-demand prices come from: "price-list-api" (asked now) or
	// "built-in-table" (the table shipped in the binary, when the API could not be asked).
	Source string `json:"source"`
	// SourceDate is the date of the prices (the table's; today for the API).
	SourceDate string `json:"sourceDate"`
	// AgeDays is how old the built-in table is, in days.
	AgeDays int `json:"ageDays,omitempty"`
	// Notes say what the figures leave out or why the table was used.
	Notes []string `json:"notes,omitempty"`
	// Limit is the --max-hourly-cost (or spec.maxHourlyCost) in force, if any.
	Limit float64 `json:"limit,omitempty"`
}

// CostLine is one group of identical machines.
type CostLine struct {
	// Name is "control-plane", "workers" or the GPU pool's name.
	Name         string `json:"name"`
	InstanceType string `json:"instanceType"`
	// Min and Max are machine counts (equal for the control plane and workers).
	Min int `json:"min"`
	Max int `json:"max"`
	// Spot is set for spot pools: SpotLow/SpotHigh are then the current spot prices of one
	// machine across the pool's zones (absent when unknown: the on-demand price, which is
	// a spot instance's default maximum price, is counted instead).
	Spot     bool     `json:"spot,omitempty"`
	SpotLow  *float64 `json:"spotLow,omitempty"`
	SpotHigh *float64 `json:"spotHigh,omitempty"`
	// OnDemand is one machine's on-demand price per hour; 0 with Unknown when no price was found.
	OnDemand float64 `json:"onDemand"`
	Unknown  bool    `json:"unknown,omitempty"`
	// MinHourly and MaxHourly are the line's cost per hour at Min and at Max.
	MinHourly float64 `json:"minHourly"`
	MaxHourly float64 `json:"maxHourly"`
}
