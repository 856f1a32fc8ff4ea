/* fuzz_compact.c - libFuzzer harness for sip/compact.c's records, fed what Sofia-SIP parses out
 * of arbitrary requests: the input is one or more SIP messages separated by NUL bytes; each one
 * that passes the sanity check nta applies before its message callback (Call-ID, CSeq, From,
 * To, Via) is looked up, and the new ones are answered (UDP or TCP by a bit of the input), with
 * the clock moving on so that records expire between them.  Checks: a request found again is
 * the same record, an answered one is not pending, and the table's count matches.  The top Via's
 * branch of every message goes to sip/compact_out.c's reader too: one it takes for ours must
 * be what its writer makes of the bits it read, but for the letters' case. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sip/sip_int.h"

#include <sofia-sip/msg.h>
#include <sofia-sip/sip_parser.h>
#include <sofia-sip/sip_util.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sip_ctrs *t = sip_ctrs_new(2000);
	uint64_t now = 0;

	for (size_t off = 0; off < size;) {
		const uint8_t *end = memchr(data + off, 0, size - off);
		size_t len = end ? (size_t)(end - (data + off)) : size - off;
		msg_t *m = msg_make(sip_default_mclass(), 0, data + off, (ssize_t)len);
		sip_t *sip = m ? sip_object(m) : NULL;
		unsigned char knob = len ? data[off] : 0;

		off += len + 1;
		if (sip && sip->sip_via && sip->sip_via->v_branch) {
			char again[SIP_COUT_BRANCH_LEN];
			uint64_t id;

			if (sip_cout_branch_id(sip->sip_via->v_branch, &id) == 0) {
				sip_cout_branch(id, again);
				must(strcasecmp(again, sip->sip_via->v_branch) == 0);
			}
		}
		now += knob & 0x3f ? 100u * (knob & 0x3f) : 0;
		sip_ctrs_expire(t, now);
		if (sip && sip->sip_request && sip_sanity_check(sip) == 0) {
			struct sip_ctr *c = NULL, *again = NULL;
			enum sip_ctr_match r = sip_ctrs_find(t, sip, &c);

			must((r == SIP_CTR_TOO_LONG) == (c == NULL));
			if (r == SIP_CTR_NEW) {
				must(sip_ctr_status(c) == 0);
				must(sip_ctrs_find(t, sip, &again) == SIP_CTR_RETRANSMISSION && again == c);
				if (knob & 0x40)
					sip_ctrs_forget(t, c);
				else
					sip_ctr_answered(t, c, 200 + (knob & 0x3f) * 5, "Fuzz",
							 knob & 1, knob & 2 ? "text/plain" : NULL,
							 knob & 4 ? "foo" : NULL, knob >> 7, now);
			}
		}
		if (m)
			msg_destroy(m);
	}
	sip_ctrs_expire(t, now + 2000);
	must(sip_ctrs_count(t) == 0);
	sip_ctrs_free(t);
	return 0;
}
