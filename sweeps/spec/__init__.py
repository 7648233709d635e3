"""What a sweep searches: the search space and the sweep file ([sweep], [fixed], [space.*])."""
