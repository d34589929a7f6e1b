-- Labels an operator gives a node (PUT /api/v1/nodes/{nodeId}/labels, ADR 29): jobs that ask for
-- labels (the spec's nodeLabels) are placed only on nodes carrying all of them. Set by an admin, not
-- by the node itself, so that a provider cannot claim a label it was not given.
CREATE TABLE node_label (
  node_id  VARCHAR(64) NOT NULL,
  name     VARCHAR(63) NOT NULL,
  val      VARCHAR(63) NOT NULL,
  PRIMARY KEY (node_id, name)
);
