/* fuzz_policy.c - libFuzzer harness for mapping/policy.c: parse a ruleset, then decide for a few
 * watchers, spheres and times; every decision must be one of the defined values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/policy.h"

#define MAX_LEN 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const watchers[] = {
		"sip:alice@xmpp.example", "pres:alice@XMPP.example", "sip:bob@sip.example",
		"tel:+15551234", "sip:@", "nonsense", NULL,
	};
	static const char *const spheres[] = { NULL, "work", "home" };
	static const time_t times[] = { 0, 1796126400, 4102444800 };
	struct policy *p = NULL;
	char err[256];

	if (policy_parse((const char *)data, size, MAX_LEN, &p, err, sizeof(err)) != 0) {
		must(p == NULL && err[0] != '\0');
		return 0;
	}
	must(p != NULL);
	for (size_t w = 0; w < sizeof(watchers) / sizeof(watchers[0]); w++)
		for (size_t s = 0; s < 3; s++)
			for (size_t t = 0; t < 3; t++) {
				struct policy_decision d;

				policy_decide(p, watchers[w], spheres[s], times[t], &d);
				must(d.sub == POLICY_BLOCK || d.sub == POLICY_CONFIRM ||
				     d.sub == POLICY_POLITE_BLOCK || d.sub == POLICY_ALLOW);
				must(d.user_input == POLICY_INPUT_FALSE ||
				     d.user_input == POLICY_INPUT_BARE ||
				     d.user_input == POLICY_INPUT_THRESHOLDS ||
				     d.user_input == POLICY_INPUT_FULL);
				must(d.rules <= policy_rules(p));
				must(d.rules || (d.sub == POLICY_BLOCK && d.provide == 0));
			}
	policy_free(p);
	return 0;
}
