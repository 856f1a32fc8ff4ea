/* fuzz_msrp_sdp.c - libFuzzer harness for sip/msrp_sdp.c: parse an offer, answer it, re-parse the answer (same streams, same values), answer that (same bytes), and media type matching on raw bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/msrp_sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const our_types[] = { "message/cpim", "text/plain" };
static const char *const anything[] = { "*" };

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

static int is_direction(const char *d)
{
	return strcmp(d, "sendrecv") == 0 || strcmp(d, "sendonly") == 0 ||
	       strcmp(d, "recvonly") == 0 || strcmp(d, "inactive") == 0;
}

static void check_media(const struct msrp_sdp_media *m)
{
	must(m->path != NULL && m->connection_address != NULL);
	must(m->naccept_types >= 1 && m->naccept_types <= MSRP_SDP_MAX_TYPES);
	must(m->naccept_wrapped <= MSRP_SDP_MAX_TYPES);
	must((m->accept_wrapped_types == NULL) == (m->naccept_wrapped == 0));
	must(m->nmlines >= 1 && m->nmlines <= MSRP_SDP_MAX_MLINES && m->mline < m->nmlines);
	must(m->port >= 1 && m->port <= 65535);
	must(m->setup >= MSRP_SETUP_NONE && m->setup <= MSRP_SETUP_HOLDCONN);
	must(is_direction(m->direction));
	for (size_t i = 0; i < m->nmlines; i++)
		must(m->mlines[i] != NULL && strchr(m->mlines[i], ' ') != NULL);
}

/* Answers offer as the session layer would; returns the answer (caller frees). */
static char *answer(const struct msrp_sdp_media *offer, int prefer_active, size_t *len,
		    char ***types, size_t *ntypes, char ***wrapped, size_t *nwrapped,
		    const struct msrp_sdp_local *tmpl, struct msrp_sdp_local *ours)
{
	enum msrp_setup role;

	*ours = *tmpl;
	/* our usual types, else "*" so that the writer also sees the peer's own tokens */
	if (msrp_sdp_types_intersect(our_types, 2, offer->accept_types, offer->naccept_types, types,
				     ntypes) < 0)
		must(msrp_sdp_types_intersect(anything, 1, offer->accept_types,
					      offer->naccept_types, types, ntypes) == 0);
	*wrapped = NULL;
	*nwrapped = 0;
	if (offer->naccept_wrapped)
		must(msrp_sdp_types_intersect(anything, 1, offer->accept_wrapped_types,
					      offer->naccept_wrapped, wrapped, nwrapped) == 0);
	/* a concrete type we settled on is one the peer accepts */
	for (size_t i = 0; i < *ntypes; i++)
		if (!strchr((*types)[i], '*'))
			must(msrp_sdp_type_accepted(offer->accept_types, offer->naccept_types,
						    (*types)[i]));
	ours->accept_types = (const char *const *)*types;
	ours->naccept_types = *ntypes;
	ours->accept_wrapped_types = (const char *const *)*wrapped;
	ours->naccept_wrapped = *nwrapped;
	ours->setup = msrp_sdp_answer_setup(offer->setup, prefer_active);
	/* whatever we answer, we would accept as the offerer */
	must(msrp_sdp_offer_result(offer->setup, ours->setup, &role) == 0);
	ours->direction = msrp_sdp_answer_direction(offer->direction);
	must(ours->direction != NULL);
	ours->path = offer->secure ? "msrps://gw.example:2855/fz;tcp" : "msrp://gw.example:2855/fz;tcp";
	return msrp_sdp_build(ours, offer, len);
}

static void check_offer(const struct msrp_sdp_media *offer, int prefer_active)
{
	static const struct msrp_sdp_local tmpl = {
		.addr = "192.0.2.99", .port = 2855, .max_size = 65536, .sess_id = 7,
		.sess_version = 2,
	};
	struct msrp_sdp_local ours;
	struct msrp_sdp_media back;
	char **types, **wrapped, **types2, **wrapped2, err[200] = "", *sdp, *sdp2;
	size_t ntypes, nwrapped, ntypes2, nwrapped2, len, len2;
	struct msrp_sdp_local ours2;

	sdp = answer(offer, prefer_active, &len, &types, &ntypes, &wrapped, &nwrapped, &tmpl, &ours);
	must(sdp != NULL && strlen(sdp) == len);
	/* what we write we read back: the same m= lines, our values */
	if (msrp_sdp_parse_offer(sdp, len, 1, &back, NULL, NULL, err, sizeof(err)) != 0)
		must(0);
	check_media(&back);
	must(back.mline == offer->mline && back.nmlines == offer->nmlines);
	for (size_t i = 0; i < back.nmlines; i++)
		if (i != back.mline)
			must(strcmp(back.mlines[i], offer->mlines[i]) == 0);
	must(back.secure == offer->secure && back.port == 2855 && back.max_size == 65536);
	must(strcmp(back.path, ours.path) == 0 && back.setup == ours.setup);
	must(strcmp(back.direction, ours.direction) == 0);
	must(strcmp(back.connection_address, "192.0.2.99") == 0 && !back.ip6);
	must(back.naccept_types == ntypes && back.naccept_wrapped == nwrapped);
	for (size_t i = 0; i < ntypes; i++)
		must(strcmp(back.accept_types[i], types[i]) == 0);
	for (size_t i = 0; i < nwrapped; i++)
		must(strcmp(back.accept_wrapped_types[i], wrapped[i]) == 0);

	/* answering our own answer negotiates the same types; with the same roles, the same bytes */
	sdp2 = answer(&back, prefer_active, &len2, &types2, &ntypes2, &wrapped2, &nwrapped2, &tmpl,
		      &ours2);
	must(sdp2 != NULL && strlen(sdp2) == len2);
	free(sdp2);
	ours2.setup = ours.setup;
	ours2.direction = ours.direction;
	sdp2 = msrp_sdp_build(&ours2, &back, &len2);
	must(len2 == len && memcmp(sdp, sdp2, len) == 0);
	free(sdp2);
	msrp_sdp_strv_free(types2, ntypes2);
	msrp_sdp_strv_free(wrapped2, nwrapped2);

	msrp_sdp_media_clear(&back);
	msrp_sdp_strv_free(types, ntypes);
	msrp_sdp_strv_free(wrapped, nwrapped);
	free(sdp);
}

/* Raw bytes as a range and a Content-Type, split at the first NUL. */
static void check_matching(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 2), *ct;
	size_t n;

	must(in != NULL);
	memcpy(in, data, size);
	in[size] = '\0';
	in[size + 1] = '\0';
	n = strlen(in);
	ct = in + (n < size ? n + 1 : size);
	if (msrp_sdp_type_matches(in, ct))
		must(msrp_sdp_type_matches("*", ct));
	free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy: AddressSanitizer sees any read past the end */
	char *buf = malloc(size ? size : 1), err[200];
	struct msrp_sdp_media m;
	unsigned ml = 99, nml = 99;
	int r;

	must(buf != NULL);
	memcpy(buf, data, size);
	err[0] = '\0';
	r = msrp_sdp_parse_offer(buf, size, 1, &m, &ml, &nml, err, sizeof(err));
	if (r == 0) {
		check_media(&m);
		must(ml == m.mline && nml == m.nmlines);
		check_offer(&m, (int)(size & 1));
		msrp_sdp_media_clear(&m);
	} else {
		/* refused: nothing returned, and a one-line reason */
		must(r == -1 && m.path == NULL && m.mlines == NULL && ml == 0 && nml == 0);
		must(err[0] != '\0' && !strchr(err, '\n') && !strchr(err, '\r'));
	}
	free(buf);
	check_matching(data, size);
	return 0;
}
