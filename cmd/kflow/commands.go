// SPDX-License-Identifier: Apache-2.0

package main

// commands returns the command tree. Nouns that only show things never
// change state; the daemons are "run" verbs.
func commands() *command {
	return &command{
		name: "kflow",
		sub: []*command{
			{name: "exporter", summary: "the flow exporter daemon", sub: []*command{exporterRunCmd()}},
			collectorCmd(),
			clickhouseCmd(),
			fileCmd(),
			webCmd(),
			flowCmd(),
			featureCmd(),
			progCmd(),
			mapCmd(),
			linkCmd(),
			netCmd(),
			versionCmd(),
		},
	}
}
