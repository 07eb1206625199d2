/* raid56_map: where RAID-5/6 data and parity live, in md's left-symmetric
 * layouts: pure arithmetic over the member count and the stripe number. */
#include "blockdev/levels/raid56_int.h"

/* Member holding logical data chunk @dd of @stripe, and P/Q members. */
static int data_member(const struct layer *l, uint64_t stripe, int dd)
{
	const struct r56 *r = r56_of(l);
	int n = l->l_nr, pd;

	if (r->nparity == 1) {
		pd = r->ndata - (int)(stripe % n);
		return (pd + 1 + dd) % n;
	}
	pd = n - 1 - (int)(stripe % n);
	return (pd + 2 + dd) % n;
}

static int p_member(const struct layer *l, uint64_t stripe)
{
	const struct r56 *r = r56_of(l);
	int n = l->l_nr;

	return r->nparity == 1 ? r->ndata - (int)(stripe % n) :
				 n - 1 - (int)(stripe % n);
}

static int q_member(const struct layer *l, uint64_t stripe)
{
	return (p_member(l, stripe) + 1) % l->l_nr;
}

void raid56_layout(const struct layer *l, uint64_t stripe, int *slots)
{
	const struct r56 *r = r56_of(l);

	for (int j = 0; j < r->ndata; j++)
		slots[j] = data_member(l, stripe, j);
	slots[r->ndata] = p_member(l, stripe);
	if (r->nparity == 2)
		slots[r->ndata + 1] = q_member(l, stripe);
}

void r56_map(const struct layer *l, uint64_t pos, int *member,
	     uint64_t *member_pos, uint64_t *piece_max)
{
	const struct r56 *r = r56_of(l);
	uint64_t k = pos / r->chunk, in = pos % r->chunk;
	uint64_t stripe = k / r->ndata;

	*member = data_member(l, stripe, (int)(k % r->ndata));
	*member_pos = stripe * r->chunk + in;
	*piece_max = r->chunk - in;
}
