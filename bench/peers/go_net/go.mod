module spindle.bench/peers/go_net

go 1.19
