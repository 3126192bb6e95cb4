SELECT
  COUNT(*)
FROM "p1_users" AS "u"
WHERE
  (
    "u"."risk_tolerance" IN ($p0, $p1, $p2)
    AND "u"."user_id" IN (
      SELECT
        "e1"."user_id"
      FROM "p1_events" AS "e1"
      WHERE
        "e1"."event" = $p5 AND "e1"."time" >= $p3 AND "e1"."time" < $p4
      GROUP BY
        "e1"."user_id"
      HAVING
        COUNT(*) >= $p6
    )
    AND NOT "u"."user_id" IN (
      SELECT
        "e2"."user_id"
      FROM "p1_events" AS "e2"
      WHERE
        "e2"."event" = $p9 AND "e2"."time" >= $p7 AND "e2"."time" < $p8
    )
  )
