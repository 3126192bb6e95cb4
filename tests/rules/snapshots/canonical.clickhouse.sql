SELECT
  COUNT(*)
FROM "p1_users" AS "u"
WHERE
  (
    "u"."risk_tolerance" IN ({p0: String}, {p1: String}, {p2: String})
    AND "u"."user_id" IN (
      SELECT
        "e1"."user_id"
      FROM "p1_events" AS "e1"
      WHERE
        "e1"."event" = {p5: String}
        AND "e1"."time" >= {p3: DateTime64(6)}
        AND "e1"."time" < {p4: DateTime64(6)}
      GROUP BY
        "e1"."user_id"
      HAVING
        COUNT(*) >= {p6: Float64}
    )
    AND NOT (
      "u"."user_id" IN (
        SELECT
          "e2"."user_id"
        FROM "p1_events" AS "e2"
        WHERE
          "e2"."event" = {p9: String}
          AND "e2"."time" >= {p7: DateTime64(6)}
          AND "e2"."time" < {p8: DateTime64(6)}
      )
    )
  )
